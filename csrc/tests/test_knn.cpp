// Standalone test of the k-NN, prdc and ECDF kernels against brute force (no Python). Run by ctest,
// also under ASan/UBSan (-DMEDSYN_SANITIZE=ON). Exit code != 0 on the first failure.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <utility>
#include <vector>

#include "cpu/ecdf.h"
#include "cpu/neighbors.h"
#include "cpu/prdc.h"

namespace {

int failures = 0;

void check(bool ok, const char* what, int64_t detail = 0) {
  if (!ok) {
    std::fprintf(stderr, "FAIL: %s (%lld)\n", what, static_cast<long long>(detail));
    ++failures;
  }
}

double brute_sq(const float* a, const float* b, int64_t dim) {
  long double s = 0;  // independent summation: long double, plain loop
  for (int64_t p = 0; p < dim; ++p) {
    const long double d = static_cast<long double>(a[p]) - b[p];
    s += d * d;
  }
  return static_cast<double>(s);
}

// Lattice data (small integers): every squared distance is an exact integer, so brute force is exact and
// ties at radii are frequent.
std::vector<float> lattice(int64_t rows, int64_t dim, int levels, std::mt19937& rng) {
  std::uniform_int_distribution<int> pick(0, levels - 1);
  std::vector<float> x(rows * dim);
  for (auto& v : x) v = static_cast<float>(pick(rng));
  return x;
}

std::vector<std::pair<double, int64_t>> sorted_row(const std::vector<float>& q, int64_t i, const std::vector<float>& r,
                                                   int64_t n, int64_t dim, int64_t skip) {
  std::vector<std::pair<double, int64_t>> row;
  for (int64_t j = 0; j < n; ++j)
    if (j != skip) row.emplace_back(brute_sq(&q[i * dim], &r[j * dim], dim), j);
  std::sort(row.begin(), row.end());
  return row;
}

void test_knn(int64_t q, int64_t n, int64_t dim, int64_t k, medsyn::ScanBlocks blocks, std::mt19937& rng) {
  const auto queries = lattice(q, dim, 3, rng), reference = lattice(n, dim, 3, rng);
  std::vector<double> values(q * k);
  std::vector<int64_t> indices(q * k);
  medsyn::knn_sq_distances(queries.data(), q, reference.data(), n, dim, k, medsyn::kNoSelf, values.data(),
                           indices.data(), blocks);
  for (int64_t i = 0; i < q; ++i) {
    const auto row = sorted_row(queries, i, reference, n, dim, -1);
    for (int64_t t = 0; t < k; ++t) {
      check(values[i * k + t] == row[t].first, "knn value", i);
      check(indices[i * k + t] == row[t].second, "knn index (ties -> smaller index)", i);
    }
  }
}

void test_knn_self(int64_t n, int64_t dim, int64_t k, medsyn::ScanBlocks blocks, std::mt19937& rng) {
  const auto x = lattice(n, dim, 2, rng);
  std::vector<double> values(n * k);
  std::vector<int64_t> indices(n * k);
  medsyn::knn_sq_distances_self(x.data(), n, dim, k, values.data(), indices.data(), blocks);
  for (int64_t i = 0; i < n; ++i) {
    const auto row = sorted_row(x, i, x, n, dim, i);
    for (int64_t t = 0; t < k; ++t) {
      check(values[i * k + t] == row[t].first, "self knn value", i);
      check(indices[i * k + t] == row[t].second, "self knn index", i);
    }
  }
}

void test_prdc(std::mt19937& rng) {
  const int64_t n = 130, m = 100, dim = 5, k = 3;
  const auto real = lattice(n, dim, 4, rng), synthetic = lattice(m, dim, 5, rng);
  auto radius = [&](const std::vector<float>& x, int64_t rows, int64_t i) {
    return sorted_row(x, i, x, rows, dim, i)[k - 1].first;
  };
  std::vector<double> rr(n), rs(m);
  for (int64_t i = 0; i < n; ++i) rr[i] = radius(real, n, i);
  for (int64_t j = 0; j < m; ++j) rs[j] = radius(synthetic, m, j);
  int64_t precise = 0, contained = 0, recalled = 0, covered = 0;
  for (int64_t j = 0; j < m; ++j) {
    int64_t count = 0;
    for (int64_t i = 0; i < n; ++i) count += brute_sq(&real[i * dim], &synthetic[j * dim], dim) <= rr[i];
    precise += count > 0;
    contained += count;
  }
  for (int64_t i = 0; i < n; ++i) {
    bool in_synthetic = false, reached = false;
    for (int64_t j = 0; j < m; ++j) {
      const double d = brute_sq(&real[i * dim], &synthetic[j * dim], dim);
      in_synthetic |= d <= rs[j];
      reached |= d <= rr[i];
    }
    recalled += in_synthetic;
    covered += reached;
  }
  for (int64_t block : {0, 1, 100}) {
    const medsyn::PrdcResult r = medsyn::prdc(real.data(), n, synthetic.data(), m, dim, k, {block, block});
    check(r.precision == static_cast<double>(precise) / m, "precision", block);
    check(r.recall == static_cast<double>(recalled) / n, "recall", block);
    check(r.density == static_cast<double>(contained) / (k * m), "density", block);
    check(r.coverage == static_cast<double>(covered) / n, "coverage", block);
  }
}

void test_near_duplicate() {
  // norms ~60, true distance 0.064: the float32 expansion alone is off by tens of percent
  std::mt19937 rng(3);
  std::normal_distribution<double> normal(0.0, 60.0 / std::sqrt(512.0));
  const int64_t n = 200, dim = 512;
  std::vector<float> reference(n * dim), query(dim);
  for (auto& v : reference) v = static_cast<float>(normal(rng));
  for (int64_t p = 0; p < dim; ++p) query[p] = reference[77 * dim + p] + static_cast<float>(p % 2 ? 0.0028 : -0.0028);
  double value;
  int64_t index;
  medsyn::knn_sq_distances(query.data(), 1, reference.data(), n, dim, 1, medsyn::kNoSelf, &value, &index);
  const double truth = brute_sq(query.data(), &reference[77 * dim], dim);
  check(index == 77, "near duplicate index", index);
  check(std::fabs(std::sqrt(value) / std::sqrt(truth) - 1) < 1e-12, "near duplicate distance");
}

void test_ecdf() {
  const std::vector<double> a = {1, 2, 2, 3}, b = {2, 4};
  const medsyn::EcdfDistance r = medsyn::ecdf_distance(a.data(), 4, b.data(), 2);
  // F_a: 1->.25, 2->.75, 3->1 ; F_b: 2->.5, 4->1 ; gaps .25,.25,.5,0 ; area .25*1 + .25*1 + .5*1 = 1
  check(r.ks == 0.5, "ks");
  check(std::fabs(r.area - 1.0) < 1e-15, "area");
}

}  // namespace

int main() {
  std::mt19937 rng(12345);
  test_knn(37, 61, 4, 1, {}, rng);
  test_knn(100, 150, 7, 5, {48, 96}, rng);
  test_knn(5, 12, 3, 12, {}, rng);  // k = n: every reference row
  test_knn_self(60, 3, 4, {}, rng);  // many duplicates: exact rescan path
  test_knn_self(211, 6, 3, {1, 1}, rng);  // several tiles and rounds
  test_prdc(rng);
  test_near_duplicate();
  test_ecdf();
  if (failures) {
    std::fprintf(stderr, "%d failure(s)\n", failures);
    return 1;
  }
  std::printf("test_knn: all checks passed\n");
  return 0;
}
