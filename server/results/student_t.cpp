#include "server/results/student_t.h"

#include <boost/math/distributions/students_t.hpp>
#include <stdexcept>
#include <string>

namespace server {

double student_t_quantile(double df, double p) {
  if (!(df > 0) || !(p > 0 && p < 1))
    throw std::domain_error("student_t_quantile: df " + std::to_string(df) + ", p " +
                            std::to_string(p) + " (need df > 0 and 0 < p < 1)");
  return boost::math::quantile(boost::math::students_t_distribution<double>(df), p);
}

}  // namespace server
