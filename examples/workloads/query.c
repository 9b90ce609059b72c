/* A query-heavy loop over the distribution's SQLite, for kprof's tests against perf (issue #10).
 *
 * Every call into libsqlite3 goes through this program's PLT (`.plt.sec` when linked with
 * `-fcf-protection -Wl,-z,ibtplt`), and libsqlite3 (stripped: dynamic symbols only) calls its
 * own exported functions and libc through its PLT in turn.
 *
 *   main -> query -> sqlite3_step            (the virtual machine, B-tree, mutexes)
 *                 -> sqlite3_column_int x16  (a call per column read, with its mutex)
 *                 -> sqlite3_value_int, sqlite3_libversion_number x64
 *                                          (thin calls: the PLT stubs carry a good share)
 *
 * Usage: query [ROUNDS]   (default 1000): a fixed amount of work, so the share of each function
 * does not depend on how busy the machine is.
 * Build: cc -O2 -fno-omit-frame-pointer -fcf-protection -Wl,-z,ibtplt query.c -lsqlite3
 */
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>

#define NOINLINE __attribute__((noinline))

static void check(int rc, sqlite3 *db, const char *what) {
    if (rc != SQLITE_OK && rc != SQLITE_ROW && rc != SQLITE_DONE) {
        fprintf(stderr, "query: %s: %s\n", what, sqlite3_errmsg(db));
        exit(1);
    }
}

/* One table of 2000 rows in memory. */
static sqlite3 *open_table(void) {
    sqlite3 *db;
    check(sqlite3_open(":memory:", &db), db, "open");
    check(sqlite3_exec(db, "CREATE TABLE t(k INTEGER PRIMARY KEY, v INTEGER, s TEXT)", 0, 0, 0),
          db, "create");
    sqlite3_stmt *insert;
    check(sqlite3_prepare_v2(db, "INSERT INTO t(v, s) VALUES (?1, printf('%08d', ?1))", -1,
                             &insert, 0),
          db, "prepare insert");
    check(sqlite3_exec(db, "BEGIN", 0, 0, 0), db, "begin");
    for (int i = 0; i < 2000; i++) {
        sqlite3_bind_int(insert, 1, (i * 7919) % 2000);
        check(sqlite3_step(insert), db, "insert");
        sqlite3_reset(insert);
    }
    check(sqlite3_exec(db, "COMMIT", 0, 0, 0), db, "commit");
    sqlite3_finalize(insert);
    return db;
}

/* Runs the prepared `select` once with `divisor`, reading every column many times. */
NOINLINE static long long query(sqlite3_stmt *select, int divisor) {
    long long sum = 0;
    sqlite3_bind_int(select, 1, divisor);
    while (sqlite3_step(select) == SQLITE_ROW) {
        for (int j = 0; j < 16; j++)
            sum += sqlite3_column_int(select, 0);
        /* Thin calls: here the PLT stubs on the way carry a good share of the time. */
        sqlite3_value *value = sqlite3_column_value(select, 0);
        for (int j = 0; j < 64; j++)
            sum += sqlite3_value_int(value) + sqlite3_libversion_number();
        sum += sqlite3_column_bytes(select, 1);
    }
    sqlite3_reset(select);
    return sum;
}

int main(int argc, char **argv) {
    long rounds = argc > 1 ? atol(argv[1]) : 1000;
    sqlite3 *db = open_table();
    sqlite3_stmt *select;
    check(sqlite3_prepare_v2(db, "SELECT v, s FROM t WHERE v % ?1 = 0", -1, &select, 0), db,
          "prepare select");
    long long sum = 0;
    for (long round = 0; round < rounds; round++)
        sum += query(select, 1 + round % 7);
    sqlite3_finalize(select);
    sqlite3_close(db);
    printf("%ld rounds, sum %lld\n", rounds, sum);
    return 0;
}
