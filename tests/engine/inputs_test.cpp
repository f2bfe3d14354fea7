// engine/inputs.cpp: schemas valijson cannot use are errors, not a crash.
#include <boost/test/unit_test.hpp>

#include "engine/inputs.h"

using namespace hearth;
using nlohmann::json;

BOOST_AUTO_TEST_SUITE(inputs)

// valijson calls abort() on such a schema unless VALIJSON_USE_EXCEPTIONS is
// defined (meson.build defines it for every user): this test died with SIGABRT.
BOOST_AUTO_TEST_CASE(a_ref_to_nowhere_in_the_inputs_schema_is_an_error_not_an_abort) {
  json schema = json::parse(R"({"type": "object", "properties": {"issue": {"$ref": "#/definitions/missing"}}})");
  Status s = engine::check_inputs_schema(schema);
  BOOST_REQUIRE(!s.ok());
  BOOST_TEST(s.message().find("the [inputs] schema is not valid JSON Schema") == 0u, s.message());
  auto payload = engine::prepare_payload(schema, json{{"issue", 1}});
  BOOST_TEST(!payload.ok());
}

BOOST_AUTO_TEST_SUITE_END()
