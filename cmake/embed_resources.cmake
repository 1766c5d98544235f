# Compiles every file under resources/ into the engine, so the binary never depends on where it is run from
# (or on ../shared, which a user's machine does not have). Looked up at run time with moelab::find_resource(name).
# Further files may be given as NAME=PATH pairs after resource_dir (the report's charting libraries, below).
function(moelab_embed_resources target resource_dir)
  file(GLOB_RECURSE files CONFIGURE_DEPENDS RELATIVE ${resource_dir} ${resource_dir}/*)
  set(entries "")
  foreach(f ${files})
    list(APPEND entries "${f}=${resource_dir}/${f}")
  endforeach()
  list(APPEND entries ${ARGN})
  set(out ${CMAKE_CURRENT_BINARY_DIR}/generated/resources.cpp)
  set(body "#include \"core/resources.h\"\n#include <map>\n#include <string>\nnamespace moelab {\nnamespace {\n")
  set(table "")
  set(i 0)
  foreach(entry ${entries})
    string(FIND "${entry}" "=" eq)
    string(SUBSTRING "${entry}" 0 ${eq} name)
    math(EXPR from "${eq} + 1")
    string(SUBSTRING "${entry}" ${from} -1 path)
    file(READ ${path} hex HEX)
    string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," hex "${hex}")
    string(APPEND body "const unsigned char r${i}[] = {${hex} 0};\n")
    file(SIZE ${path} size)
    string(APPEND table "    {\"${name}\", std::string_view(reinterpret_cast<const char*>(r${i}), ${size})},\n")
    set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS ${path})
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

# The files the HTML report and the PNG export need from web/ (src/report/), as NAME=PATH pairs in out_var:
# the minified browser bundles of Vega, Vega-Lite and vega-embed that `npm ci --prefix web` installs (pinned by
# web/package-lock.json; node_modules itself is never committed) and our Node.js renderer. Without node_modules
# the build still configures, with a warning, and the report writer fails with the command to run. Configure
# re-runs when web/ changes (node_modules appears or is replaced) or a bundle does.
function(moelab_web_resources out_var web_dir)
  set(bundles vega/build/vega.min.js vega-lite/build/vega-lite.min.js vega-embed/build/vega-embed.min.js)
  set(entries "web/render-svg.js=${web_dir}/render-svg.js")
  set(missing "")
  foreach(b ${bundles})
    if(EXISTS ${web_dir}/node_modules/${b})
      get_filename_component(name ${b} NAME)
      list(APPEND entries "web/${name}=${web_dir}/node_modules/${b}")
    else()
      list(APPEND missing ${b})
    endif()
  endforeach()
  set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS ${web_dir} ${web_dir}/package-lock.json)
  if(missing)
    list(JOIN missing ", " missing)
    message(WARNING "web/node_modules lacks ${missing}: `moelab analyze report` will fail until you run "
                    "`npm ci --prefix web` in ${PROJECT_SOURCE_DIR} and rebuild (scripts/install-deps.sh does it).")
    set(entries "")
  endif()
  set(${out_var} ${entries} PARENT_SCOPE)
endfunction()
