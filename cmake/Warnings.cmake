# turnstiled_target(NAME): applies our warning set (errors by default) and the src/ include root.
set(TURNSTILED_WARNINGS -Wall -Wextra -Wpedantic -Wshadow -Wnon-virtual-dtor -Wcast-align
    -Wunused -Woverloaded-virtual -Wnull-dereference -Wimplicit-fallthrough)
# Extra flags for the sanitizer presets go last, so they can turn off warnings that GCC raises
# only under instrumentation (false positives inside CLI11, <regex> and moodycamel).
set(TURNSTILED_EXTRA_WARNINGS "" CACHE STRING "warning flags appended after the project's own")
list(APPEND TURNSTILED_WARNINGS ${TURNSTILED_EXTRA_WARNINGS})
function(turnstiled_target name)
  target_compile_options(${name} PRIVATE ${TURNSTILED_WARNINGS})
  if(TURNSTILED_WERROR)
    target_compile_options(${name} PRIVATE -Werror)
  endif()
endfunction()

# turnstiled_library(NAME SOURCES... DEPS ...): one src/ folder, one library.
function(turnstiled_library name)
  cmake_parse_arguments(ARG "" "" "SOURCES;DEPS" ${ARGN})
  add_library(${name} STATIC ${ARG_SOURCES})
  target_include_directories(${name} PUBLIC ${PROJECT_SOURCE_DIR}/src)
  target_link_libraries(${name} PUBLIC ${ARG_DEPS})
  turnstiled_target(${name})
endfunction()

# turnstiled_unit_test(NAME SOURCES... DEPS ...): a doctest binary registered with CTest.
function(turnstiled_unit_test name)
  cmake_parse_arguments(ARG "" "" "SOURCES;DEPS;LABELS" ${ARGN})
  # tsan_threads.cc: librdkafka's C11 threads made visible to TSan (empty in other builds); it
  # must be in each executable itself.
  # doctest's main() is compiled once for all the test binaries: it is the heaviest file of the
  # build, and compiling it into each of them took a third of a full build's CPU time.
  if(NOT TARGET turnstiled_doctest_main)
    add_library(turnstiled_doctest_main OBJECT ${PROJECT_SOURCE_DIR}/tests/doctest_main.cc)
    target_link_libraries(turnstiled_doctest_main PUBLIC doctest::doctest)
  endif()
  add_executable(${name} ${ARG_SOURCES} $<TARGET_OBJECTS:turnstiled_doctest_main>
    ${PROJECT_SOURCE_DIR}/src/app/tsan_threads.cc)
  target_link_libraries(${name} PRIVATE ${ARG_DEPS} doctest::doctest)
  turnstiled_target(${name})
  add_test(NAME ${name} COMMAND ${name})
  set_tests_properties(${name} PROPERTIES LABELS "unit;${ARG_LABELS}"
    ENVIRONMENT "TURNSTILED_SOURCE_DIR=${PROJECT_SOURCE_DIR};TURNSTILED_SHARED_DIR=${PROJECT_SOURCE_DIR}/../shared")
endfunction()

# turnstiled_folder(NAME DEPS ... [TEST_DEPS ...]): the usual shape of a src/ folder. Every
# *.cc but *_test.cc goes into library NAME; every *_test.cc becomes a doctest binary that
# links NAME. New files are picked up without editing this folder's CMakeLists.txt.
function(turnstiled_folder name)
  cmake_parse_arguments(ARG "" "" "DEPS;TEST_DEPS" ${ARGN})
  file(GLOB srcs CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/*.cc)
  file(GLOB tests CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/*_test.cc)
  if(tests)
    list(REMOVE_ITEM srcs ${tests})
  endif()
  turnstiled_library(${name} SOURCES ${srcs} DEPS ${ARG_DEPS})
  foreach(t ${tests})
    get_filename_component(stem ${t} NAME_WE)
    turnstiled_unit_test(${stem} SOURCES ${t} DEPS ${name} ${ARG_TEST_DEPS})
  endforeach()
endfunction()
