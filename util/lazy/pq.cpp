// libpq, opened when a store at a postgres:// URL is first opened: it brings
// OpenSSL, Kerberos and LDAP, which no other command needs at start. The
// functions Hearth calls, forwarded; see util/lazy_library.h.
#include "util/lazy/pq.h"

#include <libpq-fe.h>

#include "util/lazy/forward.h"

namespace hearth::lazy {

HEARTH_LAZY_SONAME const char kPqSoname[] = "libpq.so.5";

LazyLibrary& pq_library() {
  static LazyLibrary library(kPqSoname, "the PostgreSQL store (--store postgres://...)");
  return library;
}

}  // namespace hearth::lazy

using hearth::lazy::pq_library;

HEARTH_LAZY_FORWARD(pq_library(), void, PQclear, (PGresult * r), (r))
HEARTH_LAZY_FORWARD(pq_library(), PGconn*, PQconnectdb, (const char* info), (info))
HEARTH_LAZY_FORWARD(pq_library(), void, PQconninfoFree, (PQconninfoOption * o), (o))
HEARTH_LAZY_FORWARD(pq_library(), PQconninfoOption*, PQconninfoParse, (const char* info, char** err), (info, err))
HEARTH_LAZY_FORWARD(pq_library(), char*, PQerrorMessage, (const PGconn* c), (c))
HEARTH_LAZY_FORWARD(pq_library(), PGresult*, PQexec, (PGconn * c, const char* q), (c, q))
HEARTH_LAZY_FORWARD(pq_library(), PGresult*, PQexecPrepared,
                    (PGconn * c, const char* name, int n, const char* const* values, const int* lengths,
                     const int* formats, int result_format),
                    (c, name, n, values, lengths, formats, result_format))
HEARTH_LAZY_FORWARD(pq_library(), char*, PQcmdTuples, (PGresult * r), (r))
HEARTH_LAZY_FORWARD(pq_library(), void, PQfinish, (PGconn * c), (c))
HEARTH_LAZY_FORWARD(pq_library(), void, PQfreemem, (void* p), (p))
HEARTH_LAZY_FORWARD(pq_library(), Oid, PQftype, (const PGresult* r, int col), (r, col))
HEARTH_LAZY_FORWARD(pq_library(), int, PQgetisnull, (const PGresult* r, int row, int col), (r, row, col))
HEARTH_LAZY_FORWARD(pq_library(), int, PQgetlength, (const PGresult* r, int row, int col), (r, row, col))
HEARTH_LAZY_FORWARD(pq_library(), char*, PQgetvalue, (const PGresult* r, int row, int col), (r, row, col))
HEARTH_LAZY_FORWARD(pq_library(), int, PQnfields, (const PGresult* r), (r))
HEARTH_LAZY_FORWARD(pq_library(), int, PQntuples, (const PGresult* r), (r))
HEARTH_LAZY_FORWARD(pq_library(), PGresult*, PQprepare,
                    (PGconn * c, const char* name, const char* q, int n, const Oid* types), (c, name, q, n, types))
HEARTH_LAZY_FORWARD(pq_library(), void, PQreset, (PGconn * c), (c))
HEARTH_LAZY_FORWARD(pq_library(), ExecStatusType, PQresultStatus, (const PGresult* r), (r))
HEARTH_LAZY_FORWARD(pq_library(), PQnoticeProcessor, PQsetNoticeProcessor,
                    (PGconn * c, PQnoticeProcessor p, void* arg), (c, p, arg))
HEARTH_LAZY_FORWARD(pq_library(), ConnStatusType, PQstatus, (const PGconn* c), (c))
HEARTH_LAZY_FORWARD(pq_library(), unsigned char*, PQunescapeBytea, (const unsigned char* from, size_t* len),
                    (from, len))
HEARTH_LAZY_FORWARD(pq_library(), PGresult*, PQexecParams,
                    (PGconn * c, const char* q, int n, const Oid* types, const char* const* values,
                     const int* lengths, const int* formats, int result_format),
                    (c, q, n, types, values, lengths, formats, result_format))
HEARTH_LAZY_FORWARD(pq_library(), int, PQsendQueryParams,
                    (PGconn * c, const char* q, int n, const Oid* types, const char* const* values,
                     const int* lengths, const int* formats, int result_format),
                    (c, q, n, types, values, lengths, formats, result_format))
HEARTH_LAZY_FORWARD(pq_library(), int, PQsendQueryPrepared,
                    (PGconn * c, const char* name, int n, const char* const* values, const int* lengths,
                     const int* formats, int result_format),
                    (c, name, n, values, lengths, formats, result_format))
HEARTH_LAZY_FORWARD(pq_library(), PGresult*, PQgetResult, (PGconn * c), (c))
HEARTH_LAZY_FORWARD(pq_library(), int, PQenterPipelineMode, (PGconn * c), (c))
HEARTH_LAZY_FORWARD(pq_library(), int, PQexitPipelineMode, (PGconn * c), (c))
HEARTH_LAZY_FORWARD(pq_library(), int, PQpipelineSync, (PGconn * c), (c))
HEARTH_LAZY_FORWARD(pq_library(), int, PQsocket, (const PGconn* c), (c))
HEARTH_LAZY_FORWARD(pq_library(), int, PQconsumeInput, (PGconn * c), (c))
HEARTH_LAZY_FORWARD(pq_library(), int, PQisBusy, (PGconn * c), (c))
HEARTH_LAZY_FORWARD(pq_library(), int, PQbackendPID, (const PGconn* c), (c))
HEARTH_LAZY_FORWARD(pq_library(), char*, PQresultErrorMessage, (const PGresult* r), (r))
HEARTH_LAZY_FORWARD(pq_library(), char*, PQcmdStatus, (PGresult * r), (r))
HEARTH_LAZY_FORWARD(pq_library(), PGresult*, PQmakeEmptyPGresult, (PGconn * c, ExecStatusType s), (c, s))
