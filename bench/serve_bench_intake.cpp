// The cost of checking one webhook delivery at the door, split into its
// parts: the HMAC, the nesting pre-scan, and the JSON scan with and without
// UTF-8 validation (RapidJSON's kParseValidateEncodingFlag), on GitHub's
// real push payload, in CPU time per call; and nlohmann_json's own
// validation without a DOM (json::accept, its SAX parser), the alternative
// to RapidJSON at the door. Measures, never asserts.
//
//   build/bench/serve_bench_intake PAYLOAD.json [ROUNDS]
#include <time.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>

#if defined(__SSE2__) && !defined(RAPIDJSON_SSE2)
#define RAPIDJSON_SSE2  // as ci/webhook.cpp: one definition of RapidJSON's reader
#endif
#include <rapidjson/memorystream.h>
#include <rapidjson/reader.h>
#include <nlohmann/json.hpp>

#include "ci/webhook.h"
#include "util/json_limits.h"

namespace {

// CPU time of this thread, not wall time: on a shared machine the wall
// clock mostly measures the other processes.
double cpu_ns() {
  timespec t{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return static_cast<double>(t.tv_sec) * 1e9 + static_cast<double>(t.tv_nsec);
}

template <class F>
double ns_per_call(int rounds, F f) {
  double start = cpu_ns();
  for (int i = 0; i < rounds; ++i) f();
  return (cpu_ns() - start) / rounds;
}

template <unsigned Flags>
bool rapidjson_scan(const std::string& text) {
  rapidjson::MemoryStream in(text.data(), text.size());
  rapidjson::Reader reader;
  rapidjson::BaseReaderHandler<> handler;
  return !reader.Parse<Flags>(in, handler).IsError();
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s PAYLOAD.json [ROUNDS]\n", argv[0]);
    return 2;
  }
  std::ifstream in(argv[1], std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  std::string body = ss.str();
  int rounds = argc > 2 ? std::atoi(argv[2]) : 20000;
  std::map<std::string, std::string> headers{{"x-github-event", "push"},
                                             {"x-github-delivery", "bench-1"},
                                             {"x-hub-signature-256", "sha256=" + hearth::ci::hmac_sha256_hex("s", body)}};
  volatile bool sink = false;
  double whole = ns_per_call(rounds, [&] {
    hearth::ci::Rejection why;
    sink = hearth::ci::check_delivery("s", headers, body, why).has_value();
  });
  // As `hearth serve` calls it: the MAC computed as the body streamed, the
  // body handed over (its copy here, ~0.3 us, is the bench's), the digest
  // left to the intake's writer thread.
  std::string mac = hearth::ci::hmac_sha256_hex("s", body);
  double served = ns_per_call(rounds, [&] {
    std::string copy = body;
    hearth::ci::Rejection why;
    sink = hearth::ci::check_delivery("s", headers, std::move(copy), why, &mac, /*digest=*/false).has_value();
  });
  double digest = ns_per_call(rounds, [&] { sink = !hearth::ci::sha256_hex(body).empty(); });
  double hmac = ns_per_call(rounds, [&] { sink = !hearth::ci::hmac_sha256_hex("s", body).empty(); });
  double depth = ns_per_call(rounds, [&] { sink = !hearth::json_depth_error(body).has_value(); });
  double plain = ns_per_call(rounds, [&] { sink = rapidjson_scan<rapidjson::kParseDefaultFlags>(body); });
  double utf8 = ns_per_call(rounds, [&] { sink = rapidjson_scan<rapidjson::kParseValidateEncodingFlag>(body); });
  double nlohmann_sax = ns_per_call(rounds, [&] { sink = nlohmann::json::accept(body); });
  std::printf("payload %zu bytes, %d rounds\n", body.size(), rounds);
  std::printf("check_delivery, whole: %.1f us\n", whole / 1000);
  std::printf("  HMAC-SHA256 of the body: %.1f us\n", hmac / 1000);
  std::printf("  SHA-256 of the body (the replay digest): %.1f us\n", digest / 1000);
  std::printf("check_delivery as the server's loop thread runs it (MAC given, digest to the writer): %.1f us\n",
              served / 1000);
  std::printf("  (util's nesting pre-scan, for nlohmann parses; not at the door: %.1f us)\n", depth / 1000);
  std::printf("  JSON scan without UTF-8 validation: %.1f us\n", plain / 1000);
  std::printf("  JSON scan with UTF-8 validation: %.1f us (+%.1f us, +%.0f%% of the scan)\n", utf8 / 1000,
              (utf8 - plain) / 1000, (utf8 - plain) / plain * 100);
  std::printf("  (nlohmann_json's SAX validation, UTF-8 included, instead: %.1f us)\n", nlohmann_sax / 1000);
  return sink ? 0 : 0;
}
