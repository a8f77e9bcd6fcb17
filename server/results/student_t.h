// Quantiles of Student's t distribution, from Boost.Math (fractional degrees of freedom, as
// Welch–Satterthwaite gives them; any probability). One translation unit includes Boost's
// headers, which are heavy to compile.
#pragma once

namespace server {

// The p-quantile of Student's t with df degrees of freedom (df > 0, 0 < p < 1; std::domain_error
// otherwise). student_t_quantile(4, 0.975) = 2.776...
double student_t_quantile(double df, double p);

}  // namespace server
