// LibPq: the libpq functions the postgres sink calls, loaded when the first postgres sink is
// made instead of when the process starts.
//
// Linked at build time, libpq.so.5 and the libraries it links (Kerberos, LDAP and, through
// LDAP, GnuTLS: 18 of the process's 51 shared objects) are loaded and initialised at every
// start, whatever the configuration. GnuTLS's initialisation alone parses its ASN.1 tables: of
// the 8.5 ms of CPU that `turnstiled --version` took, about 4 ms was libpq's share. A process
// without a postgres sink now never loads them; one with a postgres sink loads them once, from
// MakePostgresSink(), and a machine without libpq5 gets a clear error there instead of a
// binary that does not start.
//
// Thread-safe: LoadLibPq() may be called from any thread; the table it returns is constant.
#pragma once

#include <libpq-fe.h>

#include "base/status.h"

namespace turnstiled::sink {

// One member per libpq function used, named as the function and of its type.
struct LibPq {
  decltype(&::PQcmdStatus) PQcmdStatus = nullptr;
  decltype(&::PQclear) PQclear = nullptr;
  decltype(&::PQconnectdbParams) PQconnectdbParams = nullptr;
  decltype(&::PQconninfoFree) PQconninfoFree = nullptr;
  decltype(&::PQconninfoParse) PQconninfoParse = nullptr;
  decltype(&::PQdb) PQdb = nullptr;
  decltype(&::PQerrorMessage) PQerrorMessage = nullptr;
  decltype(&::PQexec) PQexec = nullptr;
  decltype(&::PQexecParams) PQexecParams = nullptr;
  decltype(&::PQfinish) PQfinish = nullptr;
  decltype(&::PQfreemem) PQfreemem = nullptr;
  decltype(&::PQgetResult) PQgetResult = nullptr;
  decltype(&::PQgetvalue) PQgetvalue = nullptr;
  decltype(&::PQhost) PQhost = nullptr;
  decltype(&::PQntuples) PQntuples = nullptr;
  decltype(&::PQport) PQport = nullptr;
  decltype(&::PQputCopyData) PQputCopyData = nullptr;
  decltype(&::PQputCopyEnd) PQputCopyEnd = nullptr;
  decltype(&::PQresStatus) PQresStatus = nullptr;
  decltype(&::PQresultErrorField) PQresultErrorField = nullptr;
  decltype(&::PQresultErrorMessage) PQresultErrorMessage = nullptr;
  decltype(&::PQresultStatus) PQresultStatus = nullptr;
  decltype(&::PQsetNoticeProcessor) PQsetNoticeProcessor = nullptr;
  decltype(&::PQstatus) PQstatus = nullptr;
  decltype(&::PQtransactionStatus) PQtransactionStatus = nullptr;
};

// The shared object loaded: libpq's soname on Debian (package libpq5).
inline constexpr const char* kLibPqSoname = "libpq.so.5";

// Loads kLibPqSoname on the first call and resolves every member. Every later call returns the
// same table, or the same error: InvalidArgument naming the library and what is missing.
base::Result<const LibPq*> LoadLibPq();

// The same from `soname`, uncached: a table that is never unloaded on success (tests).
base::Result<const LibPq*> LoadLibPqFrom(const char* soname);

}  // namespace turnstiled::sink
