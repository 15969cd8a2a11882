// Distances between the empirical CDFs of two samples of scalars, exact, in one merge walk.
//   ks   = sup_x |F_a(x) - F_b(x)| (right-continuous ECDFs; == scipy.stats.ks_2samp(a, b).statistic)
//   area = integral |F_a(x) - F_b(x)| dx (== scipy.stats.wasserstein_distance(a, b))
#pragma once
#include <cstdint>

namespace medsyn {

struct EcdfDistance {
  double ks;
  double area;
};

// a [n], b [m] finite float64 samples, n, m >= 1 (inputs are not modified). O((n + m) log(n + m)).
EcdfDistance ecdf_distance(const double* a, int64_t n, const double* b, int64_t m);

}  // namespace medsyn
