/*
** thread_private.h -- what thread.c, process.c and excepthook.c share.  Only those three
** include it: the rest of lthreading sees threads through lthreading.h alone.
**
**   thread.c      the Thread object: fields, class, snapshot, start, the new OS thread's
**                 run and finish, join/result/cancel
**   process.c     lt_G and the list of active threads, the current and main thread, fork,
**                 the module's thread functions, process exit, print, fresh states
**   excepthook.c  threading.excepthook, reports on stderr, the hook's memory limit
**
** LOCKING (one set of rules for the three files)
**   t->mu protects the mutable fields of one lt_Thread (state, name, results, ...); `ended`,
**   `joiners` and `native` are atomics read without it.  lt_G.mu protects the process-wide
**   list of active threads, the counters, the stack size, the exit hooks and the
**   excepthook.  Never take t->mu while holding lt_G.mu or the other way round: they are
**   independent leaves.
*/
#ifndef LT_THREAD_PRIVATE_H
#define LT_THREAD_PRIVATE_H

#include "lthreading.h"

enum { NEW, STARTED, ENDED };

struct lt_Thread {
  lt_Object obj;
  pthread_mutex_t mu;
  int state, daemon, ok, kind;         /* kind: 0 thread, 1 main, 2 dummy */
  atomic_int ended;                    /* 1 once ENDED: what join() spins and parks on */
  atomic_int joiners;                  /* threads parked (or about to park) on `ended` */
  atomic_int inside;                   /* 1 from start() until thread_main last touches t */
  size_t memlimit;                     /* bytes for the thread's state while it runs; 0: none */
  char *name;                          /* binary-safe: namelen bytes (and a '\0' after) */
  size_t namelen;
  lua_Integer ident;
  int has_ident;
  atomic_llong native;                 /* gettid() of the thread, 0 until it published it */
  lt_Buf *paths, *payload;             /* start -> freed by the new thread when it ends */
  lt_Buf *results;                     /* return values, or the error value when !ok */
  lt_Buf *fields;                      /* self's fields as the thread left them */
  struct Snapshot *view;               /* fields+class as last sent to another thread */
  lt_Thread *next, *prev;              /* lt_G.active */
  lt_Intr intr;                        /* cancel(), the OS name (interrupt.c) */
};

/* ============================================================ process.c: the process */
typedef struct lt_Process {
  pthread_mutex_t mu;
  lt_Thread active;                    /* list head (sentinel) */
  long counter, dummies;
  lt_Thread *main;
  size_t stacksize;
  struct Hook *hook;                   /* the installed excepthook, NULL: default */
  atomic_int ending;                   /* threads off the list, not yet done with their end */
} lt_Process;
extern lt_Process lt_G;
extern _Thread_local lt_Thread *lt_T_current;  /* this OS thread's Thread, or NULL */
void lt_active_add(lt_Thread *t);      /* lt_G.mu held */
void lt_active_remove(lt_Thread *t);   /* lt_G.mu held; not on the list: nothing */

/* ======================================================== thread.c: the Thread object */
extern const char lt_K_SELF;           /* registry[&lt_K_SELF]: this thread's own proxy */
/* Fill a zeroed lt_Thread. */
void lt_thread_setup(lt_Thread *t, const char *name, int daemon, int kind);
/* Wait (armed: Ctrl-C, cancel) until t ended or the deadline; *ended: whether it did.
** 0, or LT_INTERRUPTED (the thread had not ended). */
int  lt_wait_ended(lt_Thread *t, double deadline, int *ended);
/* Call the target at index ti with the args table at ai (nil: none), unpacked up to
** args.n or #args; returns all its results, which end the stack above index 1. */
int  lt_thread_run_with(lua_State *L, int ti, int ai);
/* Push the field table (user value 1) of the Thread proxy at idx, creating it if asked;
** 0 (and nil pushed) if it has none. */
int  lt_thread_fields(lua_State *L, int idx, int create);
/* Encode the n values on top (popping them) into a buffer kept by t; NULL and the error
** message on top if they cannot cross.  names: the values' names for errors, or NULL. */
lt_Buf *lt_thread_encode(lua_State *L, int n, const char *const *names, lt_Thread *t);

/* ====================================================== thread_run.c: the run, the end */
void *lt_thread_main(void *arg);       /* the OS thread's job: t, with start()'s reference */
/* Leave enumerate() first, then become ENDED (the process's own threads: process.c). */
void lt_mark_ended(lt_Thread *t, int ok, lt_Buf *results, lt_Buf *fields);
/* Become ENDED (t is off the active list already) and wake the joiners. */
void lt_publish_ended(lt_Thread *t, int ok, lt_Buf *results, lt_Buf *fields);

/* =============================================================== excepthook.c: hook */

/* The allocator of a thread given a memory_limit: counts its state's bytes.  `limit` is
** what is enforced now (0: nothing), `cap` the thread's memory_limit. */
typedef struct MemLimit { size_t used, limit, cap; } MemLimit;
extern _Thread_local MemLimit *lt_T_ml;  /* the running Thread's, while it has a memory_limit */
/* Write a whole message to stderr at once, so that threads do not interleave. */
void lt_write_stderr(const char *s, size_t n);
int  lt_default_excepthook(lua_State *L);   /* threading.__excepthook__(args) */
/* Push the installed hook (or the default).  May raise (memory). */
void lt_push_hook(lua_State *L);
int  lt_set_excepthook(lua_State *L);       /* threading.excepthook = value at 1 */

#endif
