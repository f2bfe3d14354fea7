// The test runner's entry point; the suites live beside it, one per file.
#define BOOST_TEST_MODULE hearth
#include <boost/test/unit_test.hpp>
