// Independent double-precision reference implementations for the optimizer tests: plain loops,
// written from docs/science.md, sharing no code with the library.
#pragma once

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

namespace reference {

using Matrix = std::vector<double>;  // row-major

inline Matrix matmul(const Matrix& a, const Matrix& b, int n, int k, int m) {  // (n,k)(k,m)
  Matrix c(size_t(n) * m, 0.0);
  for (int i = 0; i < n; ++i)
    for (int l = 0; l < k; ++l)
      for (int j = 0; j < m; ++j) c[i * m + j] += a[i * k + l] * b[l * m + j];
  return c;
}

inline Matrix transpose(const Matrix& a, int rows, int cols) {
  Matrix t(a.size());
  for (int i = 0; i < rows; ++i)
    for (int j = 0; j < cols; ++j) t[j * rows + i] = a[i * cols + j];
  return t;
}

struct Coeffs {
  double a, b, c;
};

inline Coeffs coefficients(const std::string& set, int k) {
  static const Coeffs polar[5] = {{8.156554524902461, -22.48329292557795, 15.878769915207462},
                                  {4.042929935166739, -2.808917465908714, 0.5000178451051316},
                                  {3.8916678022926607, -2.772484153217685, 0.5060648178503393},
                                  {3.285753657755655, -2.3681294933425376, 0.46449024233003106},
                                  {2.3465413258596377, -1.7097828382687081, 0.42323551169305323}};
  if (set == "jordan") return {3.4445, -4.7750, 2.0315};
  if (set == "cubic") return {1.5, -0.5, 0.0};
  if (set == "taylor") return {1.875, -1.25, 0.375};
  return polar[std::min(k, 4)];
}

// NS_K as docs/science.md defines it. "svd" is computed as 200 cubic steps, which converge to the
// exact polar factor U Vᵀ for a full-rank matrix.
// "none" keeps the direction and rescales it to the Frobenius norm of a semi-orthogonal matrix of
// that shape, sqrt(min(rows, cols)), so that the ablation changes the direction only.
inline Matrix newton_schulz(Matrix x, int rows, int cols, const std::string& set, int steps) {
  if (set == "none") {
    double norm = 0;
    for (double v : x) norm += v * v;
    const double scale = std::sqrt(double(std::min(rows, cols))) / (std::sqrt(norm) + 1e-7);
    for (double& v : x) v *= scale;
    return x;
  }
  std::string s = set;
  if (set == "svd") {
    s = "cubic";
    steps = 200;
  }
  const bool tall = rows > cols;
  if (tall) x = transpose(x, rows, cols);
  const int r = tall ? cols : rows, c = tall ? rows : cols;
  double norm = 0;
  for (double v : x) norm += v * v;
  norm = std::sqrt(norm);
  const double scale = s == "polar_express" ? 1.0 / (norm * 1.02 + 1e-6) : 1.0 / (norm + 1e-7);
  for (double& v : x) v *= scale;
  for (int k = 0; k < steps; ++k) {
    const Coeffs co = coefficients(s, k);
    const Matrix a = matmul(x, transpose(x, r, c), r, c, r);
    const Matrix a2 = matmul(a, a, r, r, r);
    Matrix poly(a.size());
    for (size_t i = 0; i < a.size(); ++i) poly[i] = co.b * a[i] + co.c * a2[i];
    const Matrix px = matmul(poly, x, r, r, c);
    for (size_t i = 0; i < x.size(); ++i) x[i] = co.a * x[i] + px[i];
  }
  return tall ? transpose(x, r, c) : x;
}

}  // namespace reference
