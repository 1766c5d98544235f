# Compiles every file under resources/ into the engine, so the binary never depends on where it is run from
# (or on ../shared, which a user's machine does not have). Looked up at run time with moelab::resource(name).
function(moelab_embed_resources target resource_dir)
  file(GLOB_RECURSE files CONFIGURE_DEPENDS RELATIVE ${resource_dir} ${resource_dir}/*)
  set(out ${CMAKE_CURRENT_BINARY_DIR}/generated/resources.cpp)
  set(body "#include \"core/resources.h\"\n#include <map>\n#include <string>\nnamespace moelab {\nnamespace {\n")
  set(table "")
  set(i 0)
  foreach(f ${files})
    file(READ ${resource_dir}/${f} hex HEX)
    string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," hex "${hex}")
    string(APPEND body "const unsigned char r${i}[] = {${hex} 0};\n")
    file(SIZE ${resource_dir}/${f} size)
    string(APPEND table "    {\"${f}\", std::string_view(reinterpret_cast<const char*>(r${i}), ${size})},\n")
    set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS ${resource_dir}/${f})
    math(EXPR i "${i} + 1")
  endforeach()
  string(APPEND body "}  // namespace\nstd::optional<std::string_view> find_resource(std::string_view name) {\n"
         "  static const std::map<std::string_view, std::string_view> table = {\n${table}  };\n"
         "  auto it = table.find(name);\n  if (it == table.end()) return std::nullopt;\n  return it->second;\n}\n"
         "}  // namespace moelab\n")
  file(WRITE ${out}.tmp "${body}")
  configure_file(${out}.tmp ${out} COPYONLY)
  target_sources(${target} PRIVATE ${out})
endfunction()
