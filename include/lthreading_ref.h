/*
** lthreading_ref.h -- make a C module's own userdata cross lthreading threads BY REFERENCE,
** as lthreading's objects do, without linking against lthreading.  Header only; public.
**
** HOW
**   Give the metatable of your userdata a field
**       __lthreading_ref = a light userdata pointing to a static lthreading_ref_type
**   When lthreading sends such a userdata to another thread (a Thread's arguments, a queue
**   item, a pool task, a Shared value, a result...), it asks toobject() for the C object
**   behind it, takes one reference (retain) for as long as the message lives, and in the
**   receiving thread calls push() to make that thread's userdata for the same object.  When
**   the message is freed (on any OS thread), it drops its reference (release).
**
**     static const lthreading_ref_type COUNTER_REF = {
**       LTHREADING_REF_MAGIC, LTHREADING_REF_VERSION, "Counter",
**       counter_toobject, counter_retain, counter_release, counter_push
**     };
**     ...
**     lua_pushlightuserdata(L, (void *)&COUNTER_REF);
**     lua_setfield(L, -2, LTHREADING_REF_FIELD);        (in the userdata's metatable)
**
**   See examples/cref/counter.c (an atomic counter) and spec/cref_spec.lua.
**
** THE CONTRACT
**   - The object is shared by several OS threads at once: its own operations must be
**     thread-safe (atomics or its own mutex); lthreading adds no lock around them.
**   - retain(obj) and release(obj) count references atomically.  release may run on ANY OS
**     thread, including one with no Lua state, and after the state that made the object
**     was closed; it frees the object when the count reaches 0.  Neither may raise or call
**     Lua.
**   - toobject(L, idx) runs in the SENDING thread: return the object behind the userdata at
**     idx (borrowed: lthreading calls retain itself), or NULL if it has none (closed,
**     freed): the transfer then fails with "cannot transfer PATH: userdata (NAME): ...".
**     It must not raise.
**   - push(L, obj) runs in the RECEIVING thread: push exactly one value for obj (normally a
**     new userdata with your metatable, made in that state with luaL_newmetatable, so the
**     module need not be required there) holding ITS OWN reference: allocate the userdata
**     first, then retain -- so that a memory error (push may raise) leaks nothing.  It may
**     be called several times for one message (a message is decoded once per receiver).
**     Identity: within one transfer, the same userdata twice arrives as one value; across
**     transfers push decides (it may cache one userdata per object per state).
**   - The code must outlive every reference: a module whose objects cross must stay loaded
**     until the process exits (dlopen itself with RTLD_NODELETE in luaopen_, as lthreading
**     does), since release and push may run after the state that loaded it was closed.
**   - A userdata whose metatable has both __lthreading_ref and __reduce crosses by reference.
**   - magic and version are checked; a mismatch fails the transfer (never a crash).
*/
#ifndef LTHREADING_REF_H
#define LTHREADING_REF_H

#include "lua.h"

#define LTHREADING_REF_FIELD   "__lthreading_ref"
#define LTHREADING_REF_MAGIC   0x6c745266u    /* "ltRf" */
#define LTHREADING_REF_VERSION 1

typedef struct lthreading_ref_type {
  unsigned magic;                               /* LTHREADING_REF_MAGIC */
  int version;                                  /* LTHREADING_REF_VERSION */
  const char *name;                             /* for messages, e.g. "Counter" */
  void *(*toobject)(lua_State *L, int idx);     /* sender: the object, borrowed, or NULL */
  void (*retain)(void *obj);                    /* +1 reference; any thread */
  void (*release)(void *obj);                   /* -1 reference, freeing at 0; any thread */
  void (*push)(lua_State *L, void *obj);        /* receiver: push a value owning a reference */
} lthreading_ref_type;

#endif
