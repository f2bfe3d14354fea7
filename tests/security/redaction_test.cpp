// Redaction from the attacker's side: a sandboxed step asks a granted
// command (which holds the secret) to print it in cheap disguises. None of
// them may reach the step's output, hearth's terminal and events, or the
// store (database and WAL). Redaction is defence in depth, not the
// boundary; these are the forms it promises to catch (docs/commands.md).
#include <openssl/evp.h>

#include <boost/test/unit_test.hpp>

#include "tests/engine/fixture.h"
#include "tests/support/hearth_process.h"

using namespace hearth::testing;

namespace {

// Long enough that its base64 wraps at 64 and 76 columns.
const std::string kToken = "ghs_Zq8vX2mN4pR7tY1uW3eK6jH9gF0dS5aL2cV8bN4mQ7wE1rT3yU6iO9pA2sD5fG8hJ0kL3zX6cV9bN";

std::string b64(const std::string& s) {
  std::string out(4 * ((s.size() + 2) / 3), '\0');
  out.resize(EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                             reinterpret_cast<const unsigned char*>(s.data()), static_cast<int>(s.size())));
  return out;
}

std::string hex(const std::string& s, const char* digits) {
  std::string out;
  for (unsigned char c : s) out += std::string{digits[c >> 4], digits[c & 15]};
  return out;
}

// What would give the token away: the token and each half, every disguise
// the program prints, and each line of the wrapped encodings.
std::vector<std::string> giveaways() {
  std::vector<std::string> out = {kToken, kToken.substr(0, 20), kToken.substr(20),
                                  hex(kToken, "0123456789abcdef").substr(0, 40),
                                  hex(kToken, "0123456789ABCDEF").substr(0, 40),
                                  b64(b64(kToken)).substr(0, 40), b64(kToken).substr(0, 40)};
  std::string enc = b64(kToken);
  for (size_t cols : {64, 76})
    for (size_t i = 0; i < enc.size(); i += cols) out.push_back(enc.substr(i, cols).substr(0, 24));
  return out;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(redaction_security)

BOOST_AUTO_TEST_CASE(a_granted_command_cannot_smuggle_the_secret_out_in_cheap_disguises) {
  TempDir repo, tools;
  fs::path leaky = tools.path / "leaky";
  write_file(leaky, R"(#!/bin/sh
t="$LEAK_TOKEN"
case "$1" in
  hex) printf %s "$t" | od -An -v -tx1 | tr -d ' \n'; echo ;;
  HEX) printf %s "$t" | od -An -v -tx1 | tr -d ' \n' | tr a-f A-F; echo ;;
  xxd) printf %s "$t" | od -An -v -tx1 | tr -d ' \n' | fold -w 60; echo ;;
  b64b64) printf %s "$t" | base64 -w0 | base64 -w0; echo ;;
  wrapped76) printf %s "$t" | base64 -w76 ;;
  wrapped64) printf %s "$t" | base64 -w64 ;;
  split) printf %s "$t" | head -c 20; printf %s "$t" | tail -c +21 >&2; echo >&2 ;;
esac
)");
  // Executable by anyone: a granted program runs as the run's unprivileged id.
  fs::permissions(leaky, fs::perms::owner_all | fs::perms::others_read | fs::perms::others_exec);
  write_file(repo.path / ".hearth" / "workflows" / "leak.toml", R"(
name = "leak"
[commands.leaky]
exec = ")" + leaky.string() + R"("
secrets = ["LEAK_TOKEN"]
allow = ["?*"]

[[steps]]
id = "print"
commands = ["leaky"]
run = '''
for how in hex HEX xxd b64b64 wrapped76 wrapped64; do leaky $how; done
leaky split 2>&1
leaky split > out.txt 2> err.txt
cat out.txt err.txt
cat out.txt err.txt > seen.txt
echo finished
'''
)");
  HearthProcess p({{"run", "leak", "--events", "jsonl"}, {{"LEAK_TOKEN", kToken}}, repo.path});
  auto r = p.finish(60s);
  BOOST_REQUIRE_MESSAGE(r.exit_code == 0, r.out << r.err);
  // With --events jsonl, events go to stdout and the step's output to stderr.
  BOOST_REQUIRE_MESSAGE(r.err.find("finished") != std::string::npos, r.err);  // the step ran to its end
  BOOST_TEST(r.err.find("***") != std::string::npos);
  std::string store;
  for (auto& name : {"state.db", "state.db-wal"}) store += read_file(repo.path / ".hearth" / name);
  BOOST_REQUIRE(!store.empty());
  std::string seen = read_file(repo.path / "seen.txt");
  for (auto& g : giveaways()) {
    BOOST_TEST(r.out.find(g) == std::string::npos, "events show " << g);
    BOOST_TEST(r.err.find(g) == std::string::npos, "the step's output shows " << g);
    BOOST_TEST(store.find(g) == std::string::npos, "the store holds " << g);
    BOOST_TEST(seen.find(g) == std::string::npos, "the step joined stdout and stderr into " << g);
  }
}

BOOST_AUTO_TEST_SUITE_END()
