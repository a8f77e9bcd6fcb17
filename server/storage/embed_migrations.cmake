# Writes a C++ source holding every migrations/NNN_*.sql file, so the coordinator binary carries
# its schema. Invoked at build time: cmake -DSQL_DIR=... -DOUT=... -P embed_migrations.cmake
file(GLOB sql_files RELATIVE ${SQL_DIR} ${SQL_DIR}/[0-9][0-9][0-9]_*.sql)
list(SORT sql_files)
set(body "")
foreach(f IN LISTS sql_files)
  string(SUBSTRING ${f} 0 3 version)
  math(EXPR version "${version}")
  file(READ ${SQL_DIR}/${f} sql)
  string(APPEND body "    {${version}, \"${f}\", R\"__sql__(${sql})__sql__\"},\n")
endforeach()
file(WRITE ${OUT}.tmp "// Generated from migrations/*.sql by server/storage/embed_migrations.cmake.\n#include \"server/storage/migrations.h\"\n\nnamespace server {\nconst std::vector<Migration>& embedded_migrations() {\n  static const std::vector<Migration> m = {\n${body}  };\n  return m;\n}\n}  // namespace server\n")
file(COPY_FILE ${OUT}.tmp ${OUT} ONLY_IF_DIFFERENT)
