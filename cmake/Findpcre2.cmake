# Findpcre2 — PCRE2's 8-bit library (Debian: libpcre2-dev) without relying on a CMake
# package config; defines the imported target pcre2::pcre2-8. mgpu's TF-IDF runs a
# custom token_pattern through it (backend/cpu/text/regex_tokenizer.hpp).
find_path(pcre2_INCLUDE_DIR NAMES pcre2.h)
find_library(pcre2_LIBRARY NAMES pcre2-8)
include(FindPackageHandleStandardArgs)
find_package_handle_standard_args(pcre2 REQUIRED_VARS pcre2_LIBRARY pcre2_INCLUDE_DIR)
if(pcre2_FOUND AND NOT TARGET pcre2::pcre2-8)
  add_library(pcre2::pcre2-8 UNKNOWN IMPORTED)
  set_target_properties(pcre2::pcre2-8 PROPERTIES
    IMPORTED_LOCATION "${pcre2_LIBRARY}"
    INTERFACE_INCLUDE_DIRECTORIES "${pcre2_INCLUDE_DIR}")
endif()
mark_as_advanced(pcre2_INCLUDE_DIR pcre2_LIBRARY)
