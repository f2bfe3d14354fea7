// Tests workflows/expr.cpp: the `${{ ... }}` expression language and templates.
#include <boost/test/unit_test.hpp>

#include <random>
#include <string>

#include "tests/support/cases.h"
#include "workflows/expr.h"

namespace {

using nlohmann::json;
using namespace hearth::workflows::expr;

const json& context() {
  static const json kContext = json::parse(R"({
    "inputs": {"name": "World", "count": 3, "flag": false, "empty": "", "list": ["a", "b", "c"],
               "fmt": "{0}/{1}", "bad": "{"},
    "steps": {"build": {"status": "success", "outputs": {"version": "1.2.3"}},
              "test-unit": {"status": "failure", "outputs": {}}},
    "env": {"CI": "true"}
  })");
  return kContext;
}

// The value of `text` evaluated against context(), as compact JSON.
std::string ev(std::string_view text, const StatusFunctions& status = {}) {
  auto e = Expression::parse(text);
  BOOST_REQUIRE_MESSAGE(e.ok(), "parse '" << text << "': " << (e.ok() ? "" : e.message()));
  auto v = e->evaluate(context(), status);
  BOOST_REQUIRE_MESSAGE(v.ok(), "evaluate '" << text << "': " << (v.ok() ? "" : v.message()));
  return v->dump();
}

std::string parse_error(std::string_view text) {
  auto e = Expression::parse(text);
  BOOST_REQUIRE_MESSAGE(!e.ok(), "expected a parse error for '" << text << "'");
  return e.message();
}

std::string eval_error(std::string_view text) {
  auto e = Expression::parse(text);
  BOOST_REQUIRE_MESSAGE(e.ok(), "parse '" << text << "': " << (e.ok() ? "" : e.message()));
  auto v = e->evaluate(context());
  BOOST_REQUIRE_MESSAGE(!v.ok(), "expected an evaluation error for '" << text << "'");
  return v.message();
}

// Check ev() and parse_error() of each case's expression.
void expect_values(std::initializer_list<hearth::testing::Case> cases) {
  hearth::testing::expect_each([](const std::string& text) { return ev(text); }, cases);
}
void expect_parse_errors(std::initializer_list<hearth::testing::Case> cases) {
  hearth::testing::expect_each([](const std::string& text) { return parse_error(text); }, cases);
}

bool has(const std::string& message, std::string_view part) {
  bool found = message.find(part) != std::string::npos;
  if (!found) BOOST_TEST_MESSAGE("'" << part << "' not in: " << message);
  return found;
}

// Checks that parse_error() of `text` holds each of `parts`.
void expect_parse_error_holds(std::string_view text, std::initializer_list<std::string_view> parts) {
  std::string e = parse_error(text);
  for (auto part : parts) BOOST_TEST(has(e, part));
}

}  // namespace

BOOST_AUTO_TEST_SUITE(expr)

BOOST_AUTO_TEST_CASE(literals) {
  expect_values({
      {"null", "null"},
      {"true", "true"},
      {"false", "false"},
      {"42", "42"},
      {"-7", "-7"},
      {"1.5", "1.5"},
      {"0x1F", "31"},
      {"-0x10", "-16"},
      {"1e3", "1000.0"},
      {"2.5E-1", "0.25"},
      {"'it''s'", "\"it's\""},
      {"''", "\"\""},
      {"  ( 'spaced' )  ", "\"spaced\""},
  });
}

BOOST_AUTO_TEST_CASE(double_quoted_strings_are_rejected) {
  expect_parse_error_holds("inputs.x == \"a\"", {"column 13: ", "single quotes"});
}

BOOST_AUTO_TEST_CASE(member_and_index_access) {
  expect_values({
      {"inputs.name", "\"World\""},
      {"steps.build.outputs.version", "\"1.2.3\""},
      {"steps['test-unit'].status", "\"failure\""},
      {"steps.test-unit.status", "\"failure\""},  // '-' belongs to identifiers
      {"inputs.list[1]", "\"b\""},
      {"inputs['list'][0]", "\"a\""},
      {"inputs.list[2.0]", "\"c\""},
      {"inputs[steps.build.status == 'success' && 'name']", "\"World\""},
  });
}

BOOST_AUTO_TEST_CASE(missing_members_and_bad_indexes_are_null) {
  expect_values({
      {"inputs.nope", "null"},
      {"inputs.nope.deeper", "null"},
      {"inputs.name.length", "null"},  // member of a string
      {"inputs.list.x", "null"},       // member of an array
      {"nosuch", "null"},              // unknown top-level name
      {"null.x", "null"},
      {"inputs.list[3]", "null"},
      {"inputs.list[-1]", "null"},
      {"inputs.list[0.5]", "null"},
      {"inputs.list['1']", "null"},
      {"inputs[0]", "null"},
  });
}

BOOST_AUTO_TEST_CASE(wildcard_filters_objects_and_arrays) {
  expect_values({
      {"steps.*.status", R"(["success","failure"])"},  // object members in key order
      {"inputs.list.*", R"(["a","b","c"])"},
      {"steps.*.outputs.version", R"(["1.2.3"])"},  // elements without it are dropped
      {"steps.*.outputs.*", R"(["1.2.3"])"},        // a second `.*` flattens
      {"steps.*['status']", R"(["success","failure"])"},
      {"inputs.name.*", "[]"},
      {"contains(steps.*.status, 'failure')", "true"},
  });
}

BOOST_AUTO_TEST_CASE(not_and_truthiness) {
  expect_values({
      {"!0", "true"},
      {"!''", "true"},
      {"!null", "true"},
      {"!inputs.flag", "true"},
      {"!'0'", "false"},  // a non-empty string is truthy
      {"!fromJSON('[]')", "false"},
      {"!!inputs.count", "true"},
  });
  BOOST_TEST(!truthy(json(-0.0)));
  BOOST_TEST(!truthy(json(std::nan(""))));
  BOOST_TEST(truthy(json::object()));
  BOOST_TEST(truthy(json(0.1)));
}

BOOST_AUTO_TEST_CASE(and_or_return_the_deciding_operand) {
  expect_values({
      {"'a' && 'b'", "\"b\""},
      {"'' && 'b'", "\"\""},
      {"0 || 'x'", "\"x\""},
      {"'y' || 'x'", "\"y\""},
      {"null || false", "false"},
      {"inputs.missing || 'default'", "\"default\""},
      {"inputs.count && inputs.list", R"(["a","b","c"])"},
      // Later operands are not evaluated once the result is known.
      {"false && fromJSON('{')", "false"},
      {"'y' || fromJSON('{')", "\"y\""},
  });
  BOOST_TEST(has(eval_error("true && fromJSON('{')"), "fromJSON()"));
}

BOOST_AUTO_TEST_CASE(precedence) {
  expect_values({
      {"true || false && false", "true"},
      {"(true || false) && false", "false"},
      {"!true == false", "true"},  // (!true) == false
      {"1 < 2 == true", "true"},
  });
}

BOOST_AUTO_TEST_CASE(comparisons_of_one_type) {
  expect_values({
      {"1 < 2", "true"},
      {"2 <= 2", "true"},
      {"2 > 2", "false"},
      {"3 >= 2", "true"},
      {"1 == 1.0", "true"},
      {"-1 < 0.5", "true"},
      {"9007199254740993 == 9007199254740992", "false"},  // integers compare exactly
      {"'a' < 'b'", "true"},
      {"'B' < 'a'", "true"},  // byte order
      {"'abc' == 'ABC'", "false"},  // case-sensitive, unlike GitHub Actions
      {"'abc' != 'ABC'", "true"},
      {"null == null", "true"},
      {"true > false", "true"},
      {"inputs.list == fromJSON('[\"a\",\"b\",\"c\"]')", "true"},  // deep equality
      {"fromJSON('[1]') == fromJSON('[2]')", "false"},
      {"fromJSON('[1]') != fromJSON('[2]')", "true"},
      {"fromJSON('[1]') < fromJSON('[2]')", "false"},
  });
}

BOOST_AUTO_TEST_CASE(comparisons_across_types_convert_to_numbers) {
  expect_values({
      {"'1' == 1", "true"},
      {"' 2 ' == 2", "true"},
      {"'0x10' == 16", "true"},
      {"'1.5e1' > 10", "true"},
      {"'' == 0", "true"},
      {"null == 0", "true"},
      {"null == false", "true"},
      {"true == 1", "true"},
      {"true == '1'", "true"},
      // Unparsable strings, arrays and objects are NaN: only != holds.
      {"'abc' == 0", "false"},
      {"'abc' != 0", "true"},
      {"'abc' < 1", "false"},
      {"'abc' >= 1", "false"},
      {"inputs.list == 0", "false"},
      {"inputs.list != 0", "true"},
      {"inputs == true", "false"},
  });
}

BOOST_AUTO_TEST_CASE(contains_starts_with_ends_with) {
  expect_values({
      {"contains('hello world', 'o w')", "true"},
      {"contains('hello', 'H')", "false"},
      {"contains(inputs.list, 'b')", "true"},
      {"contains(inputs.list, 'd')", "false"},
      {"contains(fromJSON('[1, 2]'), '2')", "true"},  // elements compare with ==
      {"contains('v12', 1)", "true"},
      {"startsWith('refs/tags/v1', 'refs/tags/')", "true"},
      {"startsWith('refs', 'REFS')", "false"},
      {"endsWith('build.tar.gz', '.gz')", "true"},
      {"endsWith('a', 'ba')", "false"},
      {"STARTSWITH('ab', 'a')", "true"},  // function names ignore case
  });
}

BOOST_AUTO_TEST_CASE(format_and_join) {
  expect_values({
      {"format('Hello {0}!', inputs.name)", "\"Hello World!\""},
      {"format('{0}-{1}-{0}', 'a', 1)", "\"a-1-a\""},
      {"format('{{{0}}} {{}}', 'x')", "\"{x} {}\""},
      {"format('[{0}][{1}][{2}]', null, 2.0, inputs.list)", R"("[][2][[\"a\",\"b\",\"c\"]]")"},
      {"format(inputs.fmt, 'a', 'b')", "\"a/b\""},
      {"join(inputs.list)", "\"a,b,c\""},
      {"join(inputs.list, ' + ')", "\"a + b + c\""},
      {"join(fromJSON('[]'), '-')", "\"\""},
      {"join('abc', '-')", "\"abc\""},
  });
}

BOOST_AUTO_TEST_CASE(format_errors) {
  // A literal format string is checked when parsing, at its column.
  BOOST_TEST(parse_error("format('{2}', 1)") ==
             "column 8: format(): placeholder {2} is out of range: 1 argument follows the format string");
  BOOST_TEST(has(parse_error("format('a { b')"), "column 8: format(): '{' at position 3"));
  BOOST_TEST(has(parse_error("format('a } b')"), "column 8: format(): unmatched '}' at position 3"));
  // A computed one when evaluating, at the call's column.
  BOOST_TEST(eval_error("format(inputs.fmt, 'a')") ==
             "column 1: format(): placeholder {1} is out of range: 1 argument follows the format string");
  BOOST_TEST(has(eval_error("format(inputs.bad)"), "column 1: format(): '{' at position 1"));
}

BOOST_AUTO_TEST_CASE(to_json_and_from_json) {
  expect_values({
      {"toJSON(inputs.list)", R"("[\"a\",\"b\",\"c\"]")"},
      {"toJSON('x')", R"("\"x\"")"},
      {"toJSON(null)", R"("null")"},
      {"fromJSON('{\"a\": [1, 2]}').a[1]", "2"},
      {"fromJSON('true')", "true"},
      {"fromJSON(toJSON(steps.build)) == steps.build", "true"},
  });
  std::string e = eval_error("  fromJSON('{')");
  BOOST_TEST(has(e, "column 3: fromJSON(): not valid JSON: "));
  std::string deep = "fromJSON('" + std::string(100000, '[') + "')";
  BOOST_TEST(has(eval_error(deep), "fromJSON(): JSON nests more than 512 levels"));
}

BOOST_AUTO_TEST_CASE(status_functions) {
  expect_values({
      {"success()", "true"},
      {"failure()", "false"},
      {"cancelled()", "false"},
      {"always()", "true"},
  });
  StatusFunctions failed{.success = false, .failure = true, .cancelled = true};
  BOOST_TEST(ev("success()", failed) == "false");
  BOOST_TEST(ev("failure() && cancelled()", failed) == "true");
  BOOST_TEST(ev("always()", failed) == "true");
  BOOST_TEST(Expression::parse("inputs.x || Failure()")->uses_status_function());
  BOOST_TEST(Expression::parse("!always()")->uses_status_function());
  BOOST_TEST(!Expression::parse("success")->uses_status_function());  // a context name, not a call
  BOOST_TEST(!Expression::parse("contains(inputs.a, 'b')")->uses_status_function());
}

BOOST_AUTO_TEST_CASE(function_arity_and_unknown_names_are_parse_errors) {
  expect_parse_errors({
      {"contains('a')", "column 1: contains() takes 2 arguments but was given 1"},
      {"x || success(1)", "column 6: success() takes no arguments but was given 1"},
      {"join()", "column 1: join() takes 1 or 2 arguments but was given 0"},
      {"format()", "column 1: format() takes at least 1 argument but was given 0"},
      {"toJSON(1, 2)", "column 1: toJSON() takes 1 argument but was given 2"},
  });
  BOOST_TEST(parse_error("contians('a', 'b')") ==
             "column 1: unknown function 'contians' (did you mean 'contains'?)");
  expect_parse_error_holds("frobnicate()",
                           {"column 1: unknown function 'frobnicate'; known functions are contains, startsWith", "cancelled"});
}

BOOST_AUTO_TEST_CASE(parse_errors_name_the_column) {
  expect_parse_errors({
      {"(a == b", "column 8: expected ')' but found end of expression"},
      {"#", "column 1: unexpected character '#'"},
      {"a \x01", "column 3: unexpected byte 0x01"},
      {"", "column 1: empty expression"},
      {"   ", "column 1: empty expression"},
      {"a b", "column 3: expected an operator or end of expression but found 'b'"},
      {"a == 1 )", "column 8: expected an operator or end of expression but found ')'"},
      {"a ==", "column 5: expected a value but found end of expression"},
      {"a && || b", "column 6: expected a value but found '||'"},
      {"x == 'abc", "column 6: unterminated string (missing closing ')"},
      {"a = b", "column 3: unexpected '=' (use '==' to compare)"},
      {"a & b", "column 3: unexpected '&' (use '&&')"},
      {"a[0", "column 4: expected ']' but found end of expression"},
      {"a.1", "column 3: expected a property name or '*' after '.' but found number 1"},
      {"contains('a', 'b'", "column 18: expected ',' or ')' but found end of expression"},
      {"12abc", "column 1: invalid number '12abc'"},
      {"x > 1e999", "column 5: number '1e999' is out of range"},
      {"-a", "column 1: unexpected character '-'"},
  });
}

BOOST_AUTO_TEST_CASE(nesting_is_limited) {
  auto nested = [](int n) { return std::string(n, '(') + "1" + std::string(n, ')'); };
  BOOST_TEST(Expression::parse(nested(64)).ok());
  BOOST_TEST(parse_error(nested(65)) == "column 65: expression nests more than 64 levels deep");
  BOOST_TEST(has(parse_error(std::string(100000, '(')), "nests more than 64 levels"));
  BOOST_TEST(has(parse_error(std::string(100000, '!') + "x"), "nests more than 64 levels"));
  std::string indexes = "a";
  for (int i = 0; i < 100000; ++i) indexes += "[a";
  BOOST_TEST(has(parse_error(indexes), "nests more than 64 levels"));
  std::string calls;
  for (int i = 0; i < 100000; ++i) calls += "toJSON(";
  BOOST_TEST(has(parse_error(calls), "nests more than 64 levels"));
}

BOOST_AUTO_TEST_CASE(long_flat_expressions_are_fine) {
  std::string chain = "inputs.nope";
  for (int i = 0; i < 50000; ++i) chain += " || inputs.nope";
  BOOST_TEST(ev(chain + " || 'last'") == "\"last\"");
  std::string path = "inputs";
  for (int i = 0; i < 50000; ++i) path += ".a";
  BOOST_TEST(ev(path) == "null");
  std::string big(1 << 20, 'x');
  BOOST_TEST(ev("'" + big + "' == '" + big + "'") == "true");
}

BOOST_AUTO_TEST_CASE(hostile_input_returns_errors_not_crashes) {
  std::mt19937 rng(12345);
  const std::string alphabet = "${}'()[].*!=&|<>,ab_-019x \"\\\n\xff\x80";
  json ctx = context();
  for (int round = 0; round < 5000; ++round) {
    std::string text;
    size_t length = rng() % 48;
    for (size_t i = 0; i < length; ++i) {
      text += (rng() % 8 == 0) ? static_cast<char>(rng() % 256) : alphabet[rng() % alphabet.size()];
    }
    BOOST_CHECK_NO_THROW({
      auto e = Expression::parse(text);
      if (e.ok()) (void)e->evaluate(ctx);
      auto t = Template::parse(text);
      if (t.ok()) (void)t->render(ctx);
    });
  }
  BOOST_TEST(!Template::parse(std::string(100000, '$') + std::string(100000, '{')).ok());
  BOOST_TEST(Template::parse(std::string(1 << 20, '}')).ok());
}

BOOST_AUTO_TEST_CASE(template_splits_literals_and_expressions) {
  auto t = Template::parse("Hello ${{ inputs.name }}, v${{steps.build.outputs.version}}!");
  BOOST_REQUIRE(t.ok());
  BOOST_REQUIRE(t->parts.size() == 3);
  BOOST_TEST(t->parts[0].literal == "Hello ");
  BOOST_TEST(t->parts[0].offset == 6u);
  BOOST_TEST(t->parts[0].expr->text() == " inputs.name ");
  BOOST_TEST(t->parts[1].literal == ", v");
  BOOST_TEST(t->parts[1].offset == 27u);
  BOOST_TEST(t->parts[2].literal == "!");
  BOOST_TEST(!t->parts[2].expr);
  BOOST_TEST(!t->is_literal());
  BOOST_TEST(t->render(context()).value() == "Hello World, v1.2.3!");
}

BOOST_AUTO_TEST_CASE(template_closing_braces_inside_strings) {
  auto t = Template::parse("<${{ format('}}{0}{{', 1) }}> ${{ 'a''}}' }}");
  BOOST_REQUIRE_MESSAGE(t.ok(), (t.ok() ? "" : t.message()));
  BOOST_TEST(t->parts.size() == 2u);
  BOOST_TEST(t->render(context()).value() == "<}1{> a'}}");
}

BOOST_AUTO_TEST_CASE(template_literal_text) {
  auto t = Template::parse("cost: $5 {x} }} $ {{ done");
  BOOST_REQUIRE(t.ok());
  BOOST_TEST(t->is_literal());
  BOOST_TEST(!t->is_single_expression());
  BOOST_TEST(t->render(context()).value() == "cost: $5 {x} }} $ {{ done");
  auto empty = Template::parse("");
  BOOST_REQUIRE(empty.ok());
  BOOST_TEST(empty->parts.empty());
  BOOST_TEST(empty->render(context()).value() == "");
}

BOOST_AUTO_TEST_CASE(template_errors_use_columns_of_the_whole_string) {
  BOOST_TEST(Template::parse("ab ${{ inputs.x").message() == "column 4: '${{' is never closed by '}}'");
  BOOST_TEST(Template::parse("${{ 'abc }}").message() ==
             "column 1: '${{' is never closed by '}}' (the string at column 5 is never closed)");
  BOOST_TEST(Template::parse("abc ${{ (x }}").message() == "column 12: expected ')' but found end of expression");
  BOOST_TEST(Template::parse("${{ 1 }} ${{ # }}").message() == "column 14: unexpected character '#'");
  BOOST_TEST(Template::parse("x ${{ }}").message() == "column 6: empty expression");
  auto t = Template::parse("ab ${{ fromJSON('{') }}");
  BOOST_REQUIRE(t.ok());
  auto r = t->render(context());
  BOOST_REQUIRE(!r.ok());
  BOOST_TEST(has(r.message(), "column 8: fromJSON(): not valid JSON"));
}

BOOST_AUTO_TEST_CASE(template_single_expression) {
  BOOST_TEST(Template::parse("${{ inputs.list }}")->is_single_expression());
  BOOST_TEST(Template::parse("  ${{ 1 }}\n")->is_single_expression());
  BOOST_TEST(!Template::parse("${{ 1 }}${{ 2 }}")->is_single_expression());
  BOOST_TEST(!Template::parse("x${{ 1 }}")->is_single_expression());
  BOOST_TEST(!Template::parse("${{ 1 }} x")->is_single_expression());
  BOOST_TEST(!Template::parse("plain")->is_single_expression());
  BOOST_TEST(Template::parse("${{ inputs.list }}")->render(context()).value() == R"(["a","b","c"])");
}

BOOST_AUTO_TEST_CASE(step_and_context_refs) {
  auto e = Expression::parse(
      "steps.build.outputs.version == 'x' && steps['test-unit'].status || steps.build.status"
      " || contains(env.CI, steps[inputs.k].x) || steps.*.status || format('{0}', true, null)");
  BOOST_REQUIRE(e.ok());
  BOOST_TEST(e->step_refs() == (std::vector<std::string>{"build", "test-unit"}));
  BOOST_TEST(e->context_refs() == (std::vector<std::string>{"steps", "env", "inputs"}));
  BOOST_TEST(Expression::parse("always()")->context_refs().empty());
  BOOST_TEST(Expression::parse("toJSON(steps)")->step_refs().empty());  // no particular step
}

BOOST_AUTO_TEST_CASE(to_text_of_each_type) {
  BOOST_TEST(to_text(json(nullptr)) == "");
  BOOST_TEST(to_text(json("a b")) == "a b");
  BOOST_TEST(to_text(json(true)) == "true");
  BOOST_TEST(to_text(json(42)) == "42");
  BOOST_TEST(to_text(json(3.0)) == "3");
  BOOST_TEST(to_text(json(-0.0)) == "0");
  BOOST_TEST(to_text(json(0.1)) == "0.1");
  BOOST_TEST(to_text(json(1e20)) == "1e+20");
  BOOST_TEST(to_text(json(std::nan(""))) == "NaN");
  BOOST_TEST(to_text(json::parse(R"({"a": [1, "x"]})")) == R"({"a":[1,"x"]})");
  BOOST_TEST(ev("format('{0}', 1e3)") == "\"1000\"");
}

BOOST_AUTO_TEST_CASE(one_parse_evaluates_many_times) {
  auto e = Expression::parse("inputs.n > 2");
  BOOST_REQUIRE(e.ok());
  Expression copy = *e;  // shares the tree
  BOOST_TEST(e->evaluate({{"inputs", {{"n", 3}}}}).value() == json(true));
  BOOST_TEST(copy.evaluate({{"inputs", {{"n", 1}}}}).value() == json(false));
  BOOST_TEST(copy.evaluate(json("not an object")).value() == json(false));  // null > 2
  BOOST_TEST(!Expression{}.evaluate(json::object()).ok());
}

BOOST_AUTO_TEST_SUITE_END()
