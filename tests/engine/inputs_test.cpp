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

// Every host (serve, ci, the API) gets the refusal in these words: the input,
// its value, what its schema asks and the keyword, one line per input.
BOOST_AUTO_TEST_CASE(a_refused_payload_names_each_input_its_value_and_the_keyword_it_breaks) {
  json schema = json::parse(R"({"type": "object", "required": ["version"], "properties": {
      "version": {"type": "string", "pattern": "^[0-9]+$"},
      "channel": {"type": "string", "enum": ["stable", "beta"], "default": "stable"},
      "count": {"type": "integer", "minimum": 1}}})");
  auto refused = engine::prepare_payload(schema, json{{"channel", "nightly"}, {"count", 0}});
  BOOST_REQUIRE(!refused.ok());
  const std::string& m = refused.message();
  BOOST_TEST(m.find("input 'version' is required (required = true)") != std::string::npos, m);
  BOOST_TEST(m.find(R"(input 'channel' is "nightly": must be one of "stable", "beta" (enum = ["stable","beta"]))") !=
                 std::string::npos, m);
  BOOST_TEST(m.find("input 'count' is 0: must be at least 1 (minimum = 1)") != std::string::npos, m);
  BOOST_TEST(m.find("the payload:") == std::string::npos, m);

  auto v = engine::input_violations(schema, engine::with_defaults(schema, json{{"version", "12"}}));
  BOOST_TEST(v.empty());
}

BOOST_AUTO_TEST_SUITE_END()
