// GCC/Clang vector types of 32 and 64 bytes for the float and double kernels (AVX2 / AVX-512 registers where
// the build targets them, emulated elsewhere), picked by element type and width: Vector<T, BYTES>::type.
// Plain typedefs outside any template: vector_size on a dependent alias type is not applied.
#pragma once

namespace medsyn {

typedef float Float8 __attribute__((vector_size(32)));
typedef float Float16 __attribute__((vector_size(64)));
typedef double Double4 __attribute__((vector_size(32)));
typedef double Double8 __attribute__((vector_size(64)));

template <typename T, int BYTES>
struct Vector;
template <>
struct Vector<float, 32> {
  using type = Float8;
};
template <>
struct Vector<float, 64> {
  using type = Float16;
};
template <>
struct Vector<double, 32> {
  using type = Double4;
};
template <>
struct Vector<double, 64> {
  using type = Double8;
};

}  // namespace medsyn
