#include "cpu/ecdf.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <vector>

namespace medsyn {

EcdfDistance ecdf_distance(const double* a, int64_t n, const double* b, int64_t m) {
  if (n < 1 || m < 1) throw std::invalid_argument("ecdf_distance: both samples must be non-empty");
  std::vector<double> x(a, a + n), y(b, b + m);
  std::sort(x.begin(), x.end());
  std::sort(y.begin(), y.end());
  double ks = 0.0, area = 0.0;
  int64_t i = 0, j = 0;
  while (i < n || j < m) {
    // next distinct pooled value; step past all its copies in both samples (ties move both ECDFs at once)
    const double value = (j >= m || (i < n && x[i] <= y[j])) ? x[i] : y[j];
    while (i < n && x[i] == value) ++i;
    while (j < m && y[j] == value) ++j;
    const double gap = std::fabs(static_cast<double>(i) / n - static_cast<double>(j) / m);
    ks = std::max(ks, gap);
    if (i < n || j < m) {
      const double next = (j >= m || (i < n && x[i] <= y[j])) ? x[i] : y[j];
      area += gap * (next - value);  // both ECDFs are constant on [value, next)
    }
  }
  return EcdfDistance{ks, area};
}

}  // namespace medsyn
