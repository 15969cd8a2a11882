#include "cpu/prdc.h"

#include <stdexcept>
#include <string>
#include <vector>

namespace medsyn {
namespace {

std::vector<double> kth_radii_sq(const float* x, int64_t n, int64_t dim, int64_t k, const ScanBlocks& blocks) {
  std::vector<double> values(n * k), radii(n);
  std::vector<int64_t> indices(n * k);
  knn_sq_distances_self(x, n, dim, k, values.data(), indices.data(), blocks);
  for (int64_t i = 0; i < n; ++i) radii[i] = values[i * k + k - 1];
  return radii;
}

}  // namespace

PrdcResult prdc(const float* real, int64_t n, const float* synthetic, int64_t m, int64_t dim, int64_t k,
                const ScanBlocks& blocks) {
  if (dim < 1) throw std::invalid_argument("prdc: dim must be >= 1");
  if (k < 1 || k >= n || k >= m)
    throw std::invalid_argument("prdc: k=" + std::to_string(k) + " must satisfy 1 <= k < n_real=" + std::to_string(n) +
                                " and k < n_synthetic=" + std::to_string(m));
  const std::vector<double> real_radii = kth_radii_sq(real, n, dim, k, blocks);
  const std::vector<double> synthetic_radii = kth_radii_sq(synthetic, m, dim, k, blocks);
  std::vector<int64_t> in_real_balls(m);
  std::vector<uint8_t> real_reached(n), real_in_synthetic(n);
  ball_membership(real, real_radii.data(), n, synthetic, synthetic_radii.data(), m, dim, in_real_balls.data(),
                  real_reached.data(), real_in_synthetic.data(), blocks);
  int64_t precise = 0, contained = 0, recalled = 0, covered = 0;
  for (int64_t j = 0; j < m; ++j) {
    precise += in_real_balls[j] > 0;
    contained += in_real_balls[j];
  }
  for (int64_t i = 0; i < n; ++i) {
    recalled += real_in_synthetic[i];
    covered += real_reached[i];
  }
  return PrdcResult{static_cast<double>(precise) / m, static_cast<double>(recalled) / n,
                    static_cast<double>(contained) / (static_cast<double>(k) * m), static_cast<double>(covered) / n};
}

}  // namespace medsyn
