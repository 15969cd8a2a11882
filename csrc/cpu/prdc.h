// Precision/recall (Kynkaenniemi et al. 2019) and density/coverage (Naeem et al. 2020) from the exact
// k-NN scans of neighbors.h. Torch- and Python-agnostic; features row-major float32 [rows, dim].
// radius = distance to the k-th neighbour in the own set excluding the point itself; membership `<=`.
#pragma once
#include <cstdint>

#include "cpu/neighbors.h"

namespace medsyn {

struct PrdcResult {
  double precision;  // fraction of synthetic points inside some real ball
  double recall;     // fraction of real points inside some synthetic ball
  double density;    // (1 / (k m)) * number of (real ball, synthetic point) containments
  double coverage;   // fraction of real balls containing some synthetic point
};

// real [n, dim], synthetic [m, dim], 1 <= k < min(n, m). Throws std::invalid_argument otherwise.
PrdcResult prdc(const float* real, int64_t n, const float* synthetic, int64_t m, int64_t dim, int64_t k,
                const ScanBlocks& blocks = {});

}  // namespace medsyn
