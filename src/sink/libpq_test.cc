// libpq is loaded when a postgres sink is made, not when the process starts.
#include "sink/libpq.h"

#include <dlfcn.h>
#include <doctest/doctest.h>

#include <string>

using namespace turnstiled;
using namespace turnstiled::sink;

namespace {

bool LibPqIsLoaded() {
  void* lib = ::dlopen(kLibPqSoname, RTLD_NOW | RTLD_NOLOAD);
  if (lib == nullptr) return false;
  ::dlclose(lib);  // drops the reference RTLD_NOLOAD took
  return true;
}

template <typename Fn>
bool Has(Fn fn) {
  return fn != nullptr;
}

}  // namespace

TEST_CASE("libpq is not linked: it is loaded by the first LoadLibPq, once, with every function") {
  // This test links the sinks as the daemon does: nothing has loaded libpq yet.
  CHECK_FALSE(LibPqIsLoaded());
  auto pq = LoadLibPq();
  REQUIRE(pq.ok());
  CHECK(LibPqIsLoaded());
  const LibPq& f = **pq;
  CHECK(Has(f.PQcmdStatus));
  CHECK(Has(f.PQclear));
  CHECK(Has(f.PQconnectdbParams));
  CHECK(Has(f.PQconninfoFree));
  CHECK(Has(f.PQconninfoParse));
  CHECK(Has(f.PQdb));
  CHECK(Has(f.PQerrorMessage));
  CHECK(Has(f.PQexec));
  CHECK(Has(f.PQexecParams));
  CHECK(Has(f.PQfinish));
  CHECK(Has(f.PQfreemem));
  CHECK(Has(f.PQgetResult));
  CHECK(Has(f.PQgetvalue));
  CHECK(Has(f.PQhost));
  CHECK(Has(f.PQntuples));
  CHECK(Has(f.PQport));
  CHECK(Has(f.PQputCopyData));
  CHECK(Has(f.PQputCopyEnd));
  CHECK(Has(f.PQresStatus));
  CHECK(Has(f.PQresultErrorField));
  CHECK(Has(f.PQresultErrorMessage));
  CHECK(Has(f.PQresultStatus));
  CHECK(Has(f.PQsetNoticeProcessor));
  CHECK(Has(f.PQstatus));
  CHECK(Has(f.PQtransactionStatus));
  // The functions are libpq's: a DSN is parsed, a status named.
  char* err = nullptr;
  PQconninfoOption* opts = f.PQconninfoParse("host=db.example port=5433 dbname=lake", &err);
  REQUIRE(opts != nullptr);
  std::string host;
  for (PQconninfoOption* o = opts; o->keyword != nullptr; ++o) {
    if (std::string(o->keyword) == "host" && o->val != nullptr) host = o->val;
  }
  f.PQconninfoFree(opts);
  CHECK(host == "db.example");
  CHECK(std::string(f.PQresStatus(PGRES_COMMAND_OK)) == "PGRES_COMMAND_OK");

  auto again = LoadLibPq();
  REQUIRE(again.ok());
  CHECK(*again == *pq);
}

TEST_CASE("a machine without libpq gets an error that names the library and its package") {
  auto pq = LoadLibPqFrom("libturnstiled-no-such-library.so.0");
  REQUIRE_FALSE(pq.ok());
  CHECK(pq.status().code() == base::Code::kInvalidArgument);
  CHECK(pq.status().message() ==
        "the postgres sink needs libpq (libturnstiled-no-such-library.so.0, Debian package "
        "libpq5): libturnstiled-no-such-library.so.0: cannot open shared object file: No such "
        "file or directory");
}

TEST_CASE("a library that lacks a function is refused, with the function named") {
  // libc is a library, but not libpq.
  auto pq = LoadLibPqFrom("libc.so.6");
  REQUIRE_FALSE(pq.ok());
  CHECK(pq.status().message() ==
        "the postgres sink needs libpq (libc.so.6): it has no PQcmdStatus; is it libpq 10 or "
        "newer?");
}
