// The translation unit of corio_test_pch (tests/CMakeLists.txt): CMake precompiles that target's
// header once, and every test executable reuses it. Nothing here is linked anywhere.
