#include "sink/libpq.h"

#include <dlfcn.h>

#include <memory>
#include <string>

namespace turnstiled::sink {

namespace {

// Resolves `name` into *fn; records the first name that is missing.
template <typename Fn>
void Bind(void* lib, const char* name, Fn* fn, std::string* missing) {
  *fn = reinterpret_cast<Fn>(::dlsym(lib, name));
  if (*fn == nullptr && missing->empty()) missing->assign(name);
}

}  // namespace

base::Result<const LibPq*> LoadLibPqFrom(const char* soname) {
  // RTLD_LOCAL: libpq's symbols stay out of the global namespace, as nothing else links to it.
  void* lib = ::dlopen(soname, RTLD_NOW | RTLD_LOCAL);
  if (lib == nullptr) {
    const char* why = ::dlerror();
    return base::Status::InvalidArgument(
        std::string("the postgres sink needs libpq (") + soname +
        ", Debian package libpq5): " + (why != nullptr ? why : "cannot load it"));
  }
  auto pq = std::make_unique<LibPq>();
  std::string missing;
  Bind(lib, "PQcmdStatus", &pq->PQcmdStatus, &missing);
  Bind(lib, "PQclear", &pq->PQclear, &missing);
  Bind(lib, "PQconnectdbParams", &pq->PQconnectdbParams, &missing);
  Bind(lib, "PQconninfoFree", &pq->PQconninfoFree, &missing);
  Bind(lib, "PQconninfoParse", &pq->PQconninfoParse, &missing);
  Bind(lib, "PQdb", &pq->PQdb, &missing);
  Bind(lib, "PQerrorMessage", &pq->PQerrorMessage, &missing);
  Bind(lib, "PQexec", &pq->PQexec, &missing);
  Bind(lib, "PQexecParams", &pq->PQexecParams, &missing);
  Bind(lib, "PQfinish", &pq->PQfinish, &missing);
  Bind(lib, "PQfreemem", &pq->PQfreemem, &missing);
  Bind(lib, "PQgetResult", &pq->PQgetResult, &missing);
  Bind(lib, "PQgetvalue", &pq->PQgetvalue, &missing);
  Bind(lib, "PQhost", &pq->PQhost, &missing);
  Bind(lib, "PQntuples", &pq->PQntuples, &missing);
  Bind(lib, "PQport", &pq->PQport, &missing);
  Bind(lib, "PQputCopyData", &pq->PQputCopyData, &missing);
  Bind(lib, "PQputCopyEnd", &pq->PQputCopyEnd, &missing);
  Bind(lib, "PQresStatus", &pq->PQresStatus, &missing);
  Bind(lib, "PQresultErrorField", &pq->PQresultErrorField, &missing);
  Bind(lib, "PQresultErrorMessage", &pq->PQresultErrorMessage, &missing);
  Bind(lib, "PQresultStatus", &pq->PQresultStatus, &missing);
  Bind(lib, "PQsetNoticeProcessor", &pq->PQsetNoticeProcessor, &missing);
  Bind(lib, "PQstatus", &pq->PQstatus, &missing);
  Bind(lib, "PQtransactionStatus", &pq->PQtransactionStatus, &missing);
  if (!missing.empty()) {
    ::dlclose(lib);
    return base::Status::InvalidArgument(std::string("the postgres sink needs libpq (") + soname +
                                         "): it has no " + missing + "; is it libpq 10 or newer?");
  }
  // Never unloaded: connections and results made through it may live until the process ends.
  return pq.release();
}

base::Result<const LibPq*> LoadLibPq() {
  static const base::Result<const LibPq*>* const loaded =
      new base::Result<const LibPq*>(LoadLibPqFrom(kLibPqSoname));
  return *loaded;
}

}  // namespace turnstiled::sink
