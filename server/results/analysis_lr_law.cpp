// How the best lr scales with width and batch (analysis_parts.h, lr_law.h).
#include <map>

#include "server/results/analysis_parts.h"

namespace server {

std::vector<LrLaw> lr_laws(const std::vector<Row>& rows) {
  std::map<std::string, std::vector<const Row*>> groups;
  for (const Row& row : rows) groups[row.law_key].push_back(&row);
  std::vector<LrLaw> out;
  for (const auto& [key, members] : groups) {
    LrLaw law;
    law.group = label_without(members.front()->label,
                              {"batch_tokens=", "hidden=", "model.hidden=", "model=", "tokens="});
    law.optimizer = members.front()->optimizer;
    std::vector<LrLawPoint> points;
    for (const Row* r : members) {
      const LrChoice& c = r->choice;
      if (!c.decided || c.candidates < 2 || c.provisional) continue;  // nothing was chosen
      if (c.at_grid_edge) {
        ++law.left_out_at_edge;
        continue;
      }
      points.push_back({double(r->width), double(r->batch_tokens), c.lr});
    }
    const std::optional<LrLawFit> fit = fit_lr_law(points);
    if (!fit) continue;
    law.rows = int(points.size());
    law.fit = *fit;
    out.push_back(law);
  }
  return out;
}

}  // namespace server
