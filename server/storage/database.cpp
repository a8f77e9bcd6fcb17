#include "server/storage/database.h"

#include "server/storage/migrations.h"

namespace server {

CoordinatorDatabase::CoordinatorDatabase(const std::string& path) : db_(path) {
  check_integrity(db_, path);
  migrate(db_);
  Transaction tx(db_);
  convert_row_points_to_series(db_);
  tx.commit();
  series_ = std::make_unique<SeriesStore>(db_);
}

}  // namespace server
