/*
** queue_item.c -- the queue's items and priorities: marshaling one value into an Item and
** back, PriorityQueue's keys and heap, and put_many's batch of prepared entries.
**
** ITEMS
**   An item is marshaled once, on put, into a 16-byte Item: booleans, numbers and strings
**   of up to 14 bytes are stored inline (no allocation at all); longer strings are one
**   malloc'd block; anything else is an lt_Buf (lt_encode_owned, the queue as owner, so a
**   queue that holds itself is no reference cycle).  get() pushes the item in the getter's
**   state.  Inline items own no memory, so pushing them may raise freely; an item that owns
**   memory is pushed under lua_pcall and freed before any error is re-raised.
**
** PRIORITIES
**   A PriorityQueue item is a table whose first element, its priority, is read at put time
**   into a PKey: a number, or a string compared bytewise; numbers sort before strings;
**   integers and floats compare exactly.  Equal keys are ordered by sequence number.
**
** BATCHES
**   put_many encodes all its items before it locks: they wait in a Batch, a userdata whose
**   __gc frees the entries not stored, so that an error while encoding leaks nothing.
**
** LOCKING
**   None taken here.  queue.c calls what may raise (encoding, pushing, fetching a key) and
**   lt_item_free/lt_entry_free (lt_buf_free may run a destructor) with no lock held; under
**   its locks it calls only lt_entry_lt, lt_key_free (plain free()) and the heap's
**   lt_heap_push/lt_heap_pop (which call only those two).
*/
#include <stdlib.h>
#include <string.h>

#include "queue.h"

#define NIL_ITEM "nil is not a valid queue item (use false or a sentinel)"

/* ========================================================================== ITEMS */

void lt_item_free(Item *it) {
  if (it->tag == I_LSTR) free(it->v.p);
  else if (it->tag == I_BUF) lt_buf_free((lt_Buf *)it->v.p);
  it->tag = I_FALSE;
}

static void item_error(lua_State *L, const ItemSrc *src, const char *msg) {
  if (src->index > 0) msg = lua_pushfstring(L, "item [%I]: %s", (LUAI_UACINT)src->index, msg);
  luaL_argerror(L, src->arg, msg);
}

/* Encode the value at idx into *it.  May raise; then nothing is owned. */
void lt_item_encode(lua_State *L, int idx, Item *it, lt_Object *owner,
                    const ItemSrc *src) {
  const char *names[1];
  names[0] = "item";
  switch (lua_type(L, idx)) {
    case LUA_TNONE: case LUA_TNIL:
      item_error(L, src, NIL_ITEM);
      break;
    case LUA_TBOOLEAN:
      it->tag = lua_toboolean(L, idx) ? I_TRUE : I_FALSE;
      break;
    case LUA_TNUMBER:
      if (lua_isinteger(L, idx)) { it->tag = I_INT; it->v.i = lua_tointeger(L, idx); }
      else { it->tag = I_FLT; it->v.n = lua_tonumber(L, idx); }
      break;
    case LUA_TSTRING: {
      size_t len;
      const char *s = lua_tolstring(L, idx, &len);
      if (len <= SSTR_MAX) {
        it->tag = I_SSTR;
        it->len = (unsigned char)len;
        memcpy(SSTR(it), s, len);
      } else {
        LStr *ls = (LStr *)malloc(offsetof(LStr, data) + len);
        if (ls == NULL) luaL_error(L, "not enough memory");
        ls->len = len;
        memcpy(ls->data, s, len);
        it->tag = I_LSTR;
        it->v.p = ls;
      }
      break;
    }
    default:
      if (src->index > 0)       /* the path of a marshal error: "items[2].conn" */
        names[0] = lua_pushfstring(L, "items[%I]", (LUAI_UACINT)src->index);
      it->v.p = lt_encode_owned(L, idx, 1, names, owner);
      if (src->index > 0) lua_pop(L, 1);
      it->tag = I_BUF;
  }
}

/* Push an item (does not free it).  For heavy items call under lua_pcall. */
void lt_item_push(lua_State *L, const Item *it) {
  switch (it->tag) {
    case I_FALSE: lua_pushboolean(L, 0); break;
    case I_TRUE: lua_pushboolean(L, 1); break;
    case I_INT: lua_pushinteger(L, it->v.i); break;
    case I_FLT: lua_pushnumber(L, it->v.n); break;
    case I_SSTR: lua_pushlstring(L, SSTR(it), it->len); break;
    case I_LSTR: {
      const LStr *ls = (const LStr *)it->v.p;
      lua_pushlstring(L, ls->data, ls->len);
      break;
    }
    default:
      if (lt_decode(L, (const lt_Buf *)it->v.p) != 1) luaL_error(L, "corrupt queue item");
  }
}

/* lua_pcall'd: push the item at lightuserdata 1. */
static int item_push_p(lua_State *L) {
  const Item *it = (const Item *)lua_touserdata(L, 1);
  lt_item_push(L, it);
  return 1;
}

/* Push a popped item and free it; on error it is freed before the error propagates. */
void lt_item_deliver(lua_State *L, Item *it) {
  int status;
  if (!item_heavy(it)) { lt_item_push(L, it); return; }
  lua_pushcfunction(L, item_push_p);
  lua_pushlightuserdata(L, it);
  status = lua_pcall(L, 1, 1, 0);
  lt_item_free(it);
  if (status != LUA_OK) lua_error(L);
}

/* ====================================================================== PRIORITIES */

/* i < f, exactly (Lua's rule for mixed integer/float comparison). */
static int int_lt_flt(lua_Integer i, lua_Number f) {
  if (f >= -(lua_Number)LUA_MININTEGER) return 1;          /* f >= 2^63 */
  if (f > (lua_Number)LUA_MININTEGER) {                     /* f in (-2^63, 2^63) */
    lua_Number fl = (lua_Number)(lua_Integer)f;             /* truncation */
    lua_Integer fi = (lua_Integer)f;
    if (fl > f) fi--;                                       /* floor(f) */
    return i <= fi ? (i < fi || (lua_Number)fi < f) : 0;
  }
  return 0;                                                 /* f <= -2^63 */
}

static int flt_lt_int(lua_Number f, lua_Integer i) {       /* f < i */
  if (f >= -(lua_Number)LUA_MININTEGER) return 0;
  if (f > (lua_Number)LUA_MININTEGER || f == (lua_Number)LUA_MININTEGER) {
    lua_Integer fi = (lua_Integer)f;                        /* trunc; ceil(f) for f<0 */
    lua_Number fl = (lua_Number)fi;
    if (fl < f) fi++;                                       /* ceil(f) */
    return fi <= i ? (fi < i || f < (lua_Number)fi) : 0;
  }
  return 1;
}

static int key_lt(const PKey *a, const PKey *b) {
  if (a->tag == K_STR || b->tag == K_STR) {
    size_t n;
    int c;
    if (a->tag != K_STR) return 1;                          /* numbers before strings */
    if (b->tag != K_STR) return 0;
    n = a->u.str.len < b->u.str.len ? a->u.str.len : b->u.str.len;
    c = memcmp(a->u.str.s, b->u.str.s, n);
    return c < 0 || (c == 0 && a->u.str.len < b->u.str.len);
  }
  if (a->tag == K_INT && b->tag == K_INT) return a->u.i < b->u.i;
  if (a->tag == K_FLT && b->tag == K_FLT) return a->u.n < b->u.n;
  if (a->tag == K_INT) return int_lt_flt(a->u.i, b->u.n);
  return flt_lt_int(a->u.n, b->u.i);
}

int lt_entry_lt(const PEntry *a, const PEntry *b) {
  if (key_lt(&a->key, &b->key)) return 1;
  if (key_lt(&b->key, &a->key)) return 0;
  return a->seq < b->seq;
}

void lt_entry_free(PEntry *e) {
  lt_item_free(&e->item);
  if (e->key.tag == K_STR) { free(e->key.u.str.s); e->key.tag = K_INT; }
}

/* Push the priority of the item at idx (a table whose first element is a number or a
** string), checked.  May raise (owning nothing). */
void lt_key_fetch(lua_State *L, int idx, const ItemSrc *src) {
  int t;
  if (lua_isnoneornil(L, idx))
    item_error(L, src, NIL_ITEM);
  if (!lua_istable(L, idx))
    item_error(L, src, lua_pushfstring(L, "PriorityQueue items are tables {priority, ...}, "
                                       "got %s", luaL_typename(L, idx)));
  t = lua_geti(L, idx, 1);
  if (t == LUA_TNUMBER && !lua_isinteger(L, -1) && lua_tonumber(L, -1) != lua_tonumber(L, -1))
    item_error(L, src, "priority is NaN");
  if (t != LUA_TNUMBER && t != LUA_TSTRING)
    item_error(L, src, lua_pushfstring(L, "priority (item[1]) must be a number or a "
                                       "string, got %s", luaL_typename(L, -1)));
}

/* Fill *k from the checked priority at idx, copying a string; never raises: 0 when out of
** memory. */
int lt_key_copy(lua_State *L, int idx, PKey *k) {
  if (lua_type(L, idx) == LUA_TSTRING) {
    size_t len;
    const char *s = lua_tolstring(L, idx, &len);
    char *copy = (char *)malloc(len ? len : 1);
    if (copy == NULL) return 0;
    memcpy(copy, s, len);
    k->tag = K_STR;
    k->u.str.s = copy;
    k->u.str.len = len;
  } else if (lua_isinteger(L, idx)) {
    k->tag = K_INT;
    k->u.i = lua_tointeger(L, idx);
  } else {
    k->tag = K_FLT;
    k->u.n = lua_tonumber(L, idx);
  }
  return 1;
}

void lt_key_free(PKey *k) { if (k->tag == K_STR) { free(k->u.str.s); k->tag = K_INT; } }

/* The heap of a PriorityQueue: heap[0 .. n) is a binary min-heap under lt_entry_lt.  Push
** *e (its seq already set) as heap[n]; pop heap[0]'s item into *out (its key freed). */
void lt_heap_push(PEntry *heap, size_t n, const PEntry *e) {
  size_t i = n;
  while (i > 0) {
    size_t parent = (i - 1) / 2;
    if (!lt_entry_lt(e, &heap[parent])) break;
    heap[i] = heap[parent];
    i = parent;
  }
  heap[i] = *e;
}

void lt_heap_pop(PEntry *heap, size_t n, Item *out) {
  PEntry last = heap[n - 1];
  size_t i = 0, m = n - 1;
  *out = heap[0].item;
  lt_key_free(&heap[0].key);                 /* free() only: fine under the lock */
  for (;;) {
    size_t c = 2 * i + 1;
    if (c >= m) break;
    if (c + 1 < m && lt_entry_lt(&heap[c + 1], &heap[c])) c++;
    if (!lt_entry_lt(&heap[c], &last)) break;
    heap[i] = heap[c];
    i = c;
  }
  if (m > 0) heap[i] = last;
}

/* ======================================================================== BATCHES */

static const char K_BATCH = 0;

static int batch_gc(lua_State *L) {
  Batch *b = (Batch *)lua_touserdata(L, 1);
  for (; b->done < b->n; b->done++) lt_entry_free(&b->e[b->done]);
  return 0;
}

Batch *lt_batch_new(lua_State *L, size_t n) {
  Batch *b = (Batch *)lt_newuserdata(L, offsetof(Batch, e) + (n ? n : 1) * sizeof(PEntry), 0);
  b->n = b->done = 0;
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, &K_BATCH) == LUA_TNIL) {
    lua_pop(L, 1);
    lua_createtable(L, 0, 1);
    lua_pushcfunction(L, batch_gc);
    lua_setfield(L, -2, "__gc");
    lua_pushvalue(L, -1);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &K_BATCH);
  }
  lua_setmetatable(L, -2);
  return b;
}
