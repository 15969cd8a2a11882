// pybind11 layer of the feature-space scans (neighbors.h, prdc.h, ecdf.h): C-contiguous numpy arrays in,
// numpy arrays out, GIL released while the kernels run. std::invalid_argument becomes ValueError.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <optional>
#include <stdexcept>
#include <string>

#include "bindings.h"
#include "cpu/ecdf.h"
#include "cpu/neighbors.h"
#include "cpu/prdc.h"

namespace py = pybind11;

namespace medsyn {
namespace {

using Features = py::array_t<float, py::array::c_style>;
using Doubles = py::array_t<double, py::array::c_style>;

Features features_of(const py::array& x, const char* name) {
  if (!py::isinstance<Features>(x) || !(x.flags() & py::array::c_style) || x.ndim() != 2)
    throw std::invalid_argument(std::string(name) + " must be a C-contiguous float32 array [rows, dim]");
  return py::reinterpret_borrow<Features>(x);
}

Doubles doubles_of(const py::array& x, int64_t size, const char* name) {
  if (!py::isinstance<Doubles>(x) || !(x.flags() & py::array::c_style) || x.ndim() != 1 || x.shape(0) != size)
    throw std::invalid_argument(std::string(name) + " must be a C-contiguous float64 array of length " +
                                std::to_string(size));
  return py::reinterpret_borrow<Doubles>(x);
}

void check_dims(const Features& a, const char* a_name, const Features& b, const char* b_name) {
  if (a.shape(1) != b.shape(1))
    throw std::invalid_argument(std::string(a_name) + " and " + b_name + " must have the same feature dimension");
}

py::tuple knn_numpy(const py::array& queries_in, const py::array& reference_in, int64_t k,
                    std::optional<int64_t> self_offset, int64_t block_rows, int64_t block_cols) {
  const Features queries = features_of(queries_in, "queries"), reference = features_of(reference_in, "reference");
  check_dims(queries, "queries", reference, "reference");
  const int64_t q = queries.shape(0), n = reference.shape(0), dim = queries.shape(1);
  const int64_t offset = self_offset.value_or(kNoSelf);
  int64_t eligible_min = n;
  if (self_offset && q > 0) {  // queries whose own row lies in the reference have one row fewer
    const int64_t first = std::max<int64_t>(0, -offset), last = std::min<int64_t>(q, n - offset);
    if (first < last) eligible_min = n - 1;
  }
  if (k < 1 || k > eligible_min)
    throw std::invalid_argument("k=" + std::to_string(k) + " must be in [1, " + std::to_string(eligible_min) +
                                "] (eligible reference rows)");
  py::array_t<double> values({q, k});
  py::array_t<int64_t> indices({q, k});
  double* values_ptr = values.mutable_data();
  int64_t* indices_ptr = indices.mutable_data();
  {
    py::gil_scoped_release release;
    knn_sq_distances(queries.data(), q, reference.data(), n, dim, k, offset, values_ptr, indices_ptr,
                     ScanBlocks{block_rows, block_cols});
  }
  return py::make_tuple(values, indices);
}

py::tuple knn_self_numpy(const py::array& features_in, int64_t k, int64_t block) {
  const Features features = features_of(features_in, "features");
  const int64_t n = features.shape(0), dim = features.shape(1);
  if (k < 1 || k >= n)
    throw std::invalid_argument("k=" + std::to_string(k) + " must be in [1, n - 1] with n=" + std::to_string(n));
  py::array_t<double> values({n, k});
  py::array_t<int64_t> indices({n, k});
  double* values_ptr = values.mutable_data();
  int64_t* indices_ptr = indices.mutable_data();
  {
    py::gil_scoped_release release;
    knn_sq_distances_self(features.data(), n, dim, k, values_ptr, indices_ptr, ScanBlocks{block, block});
  }
  return py::make_tuple(values, indices);
}

py::tuple ball_membership_numpy(const py::array& centers_in, const py::array& center_radii_in,
                                const py::array& points_in, const py::array& point_radii_in, int64_t block_rows,
                                int64_t block_cols) {
  const Features centers = features_of(centers_in, "centers"), points = features_of(points_in, "points");
  check_dims(centers, "centers", points, "points");
  const int64_t n = centers.shape(0), m = points.shape(0), dim = centers.shape(1);
  const Doubles center_radii = doubles_of(center_radii_in, n, "center_radii_sq");
  const Doubles point_radii = doubles_of(point_radii_in, m, "point_radii_sq");
  py::array_t<int64_t> counts(m);
  py::array_t<uint8_t> reached(n), inside(n);
  int64_t* counts_ptr = counts.mutable_data();
  uint8_t* reached_ptr = reached.mutable_data();
  uint8_t* inside_ptr = inside.mutable_data();
  {
    py::gil_scoped_release release;
    ball_membership(centers.data(), center_radii.data(), n, points.data(), point_radii.data(), m, dim, counts_ptr,
                    reached_ptr, inside_ptr, ScanBlocks{block_rows, block_cols});
  }
  return py::make_tuple(counts, reached, inside);
}

py::dict prdc_numpy(const py::array& real_in, const py::array& synthetic_in, int64_t k, int64_t block) {
  const Features real = features_of(real_in, "real"), synthetic = features_of(synthetic_in, "synthetic");
  check_dims(real, "real", synthetic, "synthetic");
  PrdcResult result;
  {
    py::gil_scoped_release release;
    result = prdc(real.data(), real.shape(0), synthetic.data(), synthetic.shape(0), real.shape(1), k,
                  ScanBlocks{block, block});
  }
  py::dict out;
  out["precision"] = result.precision;
  out["recall"] = result.recall;
  out["density"] = result.density;
  out["coverage"] = result.coverage;
  return out;
}

py::tuple ecdf_numpy(const py::array& a_in, const py::array& b_in) {
  if (!py::isinstance<Doubles>(a_in) || a_in.ndim() != 1 || !(a_in.flags() & py::array::c_style))
    throw std::invalid_argument("a must be a C-contiguous 1-d float64 array");
  if (!py::isinstance<Doubles>(b_in) || b_in.ndim() != 1 || !(b_in.flags() & py::array::c_style))
    throw std::invalid_argument("b must be a C-contiguous 1-d float64 array");
  const Doubles a = py::reinterpret_borrow<Doubles>(a_in), b = py::reinterpret_borrow<Doubles>(b_in);
  EcdfDistance result;
  {
    py::gil_scoped_release release;
    result = ecdf_distance(a.data(), a.shape(0), b.data(), b.shape(0));
  }
  return py::make_tuple(result.ks, result.area);
}

using Indices = py::array_t<int64_t, py::array::c_style>;

// Exact squared distances of the row pairs (a[a_index[p]], b[b_index[p]]): the survivors of a screen.
py::array_t<double> exact_pairs_numpy(const py::array& a_in, const py::array& a_index_in, const py::array& b_in,
                                      const py::array& b_index_in) {
  const Features a = features_of(a_in, "a"), b = features_of(b_in, "b");
  check_dims(a, "a", b, "b");
  if (!py::isinstance<Indices>(a_index_in) || !py::isinstance<Indices>(b_index_in))
    throw std::invalid_argument("a_index and b_index must be int64 arrays");
  const Indices a_index = py::reinterpret_borrow<Indices>(a_index_in);
  const Indices b_index = py::reinterpret_borrow<Indices>(b_index_in);
  if (a_index.ndim() != 1 || b_index.ndim() != 1 || a_index.shape(0) != b_index.shape(0))
    throw std::invalid_argument("a_index and b_index must be 1-d int64 arrays of one length");
  const int64_t pairs = a_index.shape(0), dim = a.shape(1), na = a.shape(0), nb = b.shape(0);
  const int64_t* ai = a_index.data();
  const int64_t* bi = b_index.data();
  for (int64_t p = 0; p < pairs; ++p)
    if (ai[p] < 0 || ai[p] >= na || bi[p] < 0 || bi[p] >= nb)
      throw std::invalid_argument("pair " + std::to_string(p) + " indexes a row outside a or b");
  py::array_t<double> out(pairs);
  double* out_ptr = out.mutable_data();
  const float* a_ptr = a.data();
  const float* b_ptr = b.data();
  {
    py::gil_scoped_release release;
#pragma omp parallel for schedule(dynamic, 16)
    for (int64_t p = 0; p < pairs; ++p) out_ptr[p] = exact_sq_distance(a_ptr + ai[p] * dim, b_ptr + bi[p] * dim, dim);
  }
  return out;
}

}  // namespace

void register_neighbors(py::module_& m) {
  m.def("exact_sq_distance_pairs", &exact_pairs_numpy, py::arg("a"), py::arg("a_index"), py::arg("b"),
        py::arg("b_index"),
        "Exact squared distances (rounded once to float64) of the rows a[a_index[p]], b[b_index[p]]; a [na,d], "
        "b [nb,d] C-contiguous float32, indices int64 [P]. Returns float64 [P].");
  m.def("knn_sq_distances", &knn_numpy, py::arg("queries"), py::arg("reference"), py::arg("k"),
        py::arg("self_offset") = py::none(), py::arg("block_rows") = 0, py::arg("block_cols") = 0,
        "Exact k nearest reference rows of each query. queries [q,d], reference [n,d]: C-contiguous float32. "
        "self_offset s: query i is reference row i+s and is skipped. Returns (squared distances float64 [q,k] "
        "ascending, indices int64 [q,k]); ties -> smaller index.");
  m.def("knn_sq_distances_self", &knn_self_numpy, py::arg("features"), py::arg("k"), py::arg("block") = 0,
        "Exact k nearest neighbours within one set excluding self (symmetric: half the tiles). "
        "Returns (squared distances float64 [n,k], indices int64 [n,k]).");
  m.def("ball_membership", &ball_membership_numpy, py::arg("centers"), py::arg("center_radii_sq"),
        py::arg("points"), py::arg("point_radii_sq"), py::arg("block_rows") = 0, py::arg("block_cols") = 0,
        "Exact pass over all (center, point) pairs. Returns (points_in_balls int64 [m], centers_reached uint8 [n], "
        "centers_in_point_balls uint8 [n]).");
  m.def("prdc", &prdc_numpy, py::arg("real"), py::arg("synthetic"), py::arg("k"), py::arg("block") = 0,
        "precision, recall, density, coverage (dict of floats) of C-contiguous float32 features.");
  m.def("ecdf_distance", &ecdf_numpy, py::arg("a"), py::arg("b"),
        "(KS statistic, area between the ECDFs) of two C-contiguous float64 samples.");
}

}  // namespace medsyn
