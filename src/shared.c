/*
** shared.c -- Shared: one table seen by every thread it is passed to.
**
** STORAGE
**   A C hash map (open addressing, linear probing, backward-shift deletion) from keys to
**   values, guarded by one lt_RawLock.  Keys: strings, numbers (a float with an integral
**   value is that integer, as in Lua), booleans and lthreading objects (the map holds a
**   reference).  Values are marshaled on the way in and rebuilt on the way out:
**   booleans, numbers and strings of up to 14 bytes are stored inline; anything else is a
**   Blob: a reference-counted long string or lt_Buf (encoded with the Shared as owner, so
**   that a Shared holding itself is no reference cycle).  A reader takes a reference to the
**   Blob under the lock and decodes it after unlocking, so decoding (which may raise, or
**   run require) never happens under the lock, and a long value is copied once, not twice.
**   An lthreading object inside a value (a Shared in a Shared) stays a reference.
**
** LENGTH
**   `border` is kept as a border of the table at all times: (border == 0 or t[border] ~= nil)
**   and t[border + 1] == nil.  Setting t[border + 1] walks it up; removing t[border] walks it
**   down; any other change keeps it a border.  So #s is O(1) and table.insert/remove, which
**   go through __len/__index/__newindex, work (each step atomic, the sequence not: use
**   update() or a Lock for compound steps).  append(v) and pop() are the atomic pair:
**   t[border + 1] = v and removing t[border], each in one locked step.
**
** HASHING
**   Keyed with a random per-process seed (see HASH SEED in shared_hash.c): chosen keys
**   cannot be made to collide.  The slot order, and so the order of pairs(), differs
**   between processes.  String hashes are cached per lua_State: see KEY HASH CACHE.
**
** ATOMIC UPDATE
**   update(k, f) holds the lock while f runs in the caller's state (under lua_pcall, so an
**   error in f releases the lock and changes nothing).  The thread holding the lock is
**   recorded; any access to the same Shared from that thread meanwhile (f touching its own
**   table) raises instead of deadlocking.
**
** LOCKING
**   s->mu is a leaf.  Under it: lookups, copies, atomic reference counts, malloc/free of
**   our own memory.  Never under it: lt_encode/lt_decode, lt_decref/blob release (a
**   destructor may run), any Lua call that can raise -- except inside update()'s pcall,
**   whose errors are caught and the lock released before they propagate.
*/
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "shared.h"

/* ========================================================================== BLOBS */

struct Blob {                  /* (typedef in shared.h) */
  atomic_int refs;
  lt_Buf *buf;                 /* NULL: a string of len bytes in data[] */
  size_t len;
  char data[1];
};

static void blob_release(Blob *b) {
  if (b && atomic_fetch_sub_explicit(&b->refs, 1, memory_order_acq_rel) == 1) {
    lt_buf_free(b->buf);
    free(b);
  }
}

static void blob_retain(Blob *b) {
  atomic_fetch_add_explicit(&b->refs, 1, memory_order_relaxed);
}

static Blob *blob_str(const char *s, size_t len) {
  Blob *b = (Blob *)malloc(offsetof(Blob, data) + len + 1);
  if (b == NULL) return NULL;
  atomic_init(&b->refs, 1);
  b->buf = NULL;
  b->len = len;
  memcpy(b->data, s, len);
  b->data[len] = '\0';
  return b;
}

/* ===================================================================== KEYS, VALUES */

/* The key and value types (enum K_*, V_*, Cell, KeyRef) are in shared.h. */

typedef struct Entry { uint64_t hash; Cell key, val; } Entry;

/*
** KEY HASH CACHE.  Hashing a string key (SipHash) was most of the cost of an uncontended
** s.k, s:get('k') or s:incr('k').  Each lua_State has a small cache (2-way set
** associative, so two keys used in turn never evict each other) from a string's address
** to its hash and stored form: a userdata that the functions reading keys from Lua hold
** as upvalue 1 (made with the class metatable, so one per state).  Only strings Lua interns
** are cached (up to 40 bytes: equal ones are one object, so a repeated key hits), and the
** cache keeps each of them alive in a user value of the userdata: while an entry is there
** its string cannot be collected, so no other string can have its address -- an address
** that matches is the same string, with the same hash.  One state runs on one OS thread at
** a time: no locking.
*/
#define KC_SIZE 16                              /* entries (sets of 2), a power of two */
#define KC_MAXLEN 40                            /* LUAI_MAXSHORTLEN: Lua interns up to it */
typedef struct KCache { struct { const char *s; uint64_t hash; Cell cell; } e[KC_SIZE]; } KCache;
#define KCACHE_UV lua_upvalueindex(1)

/* The stored form of a short string key: tag, length, bytes, zeros. */
static void sstr_cell(Cell *c, const char *s, size_t len) {
  size_t i;
  memset(c, 0, sizeof *c);
  c->tag = K_SSTR;
  c->len = (unsigned char)len;
  for (i = 0; i < len; i++) CSTR(c)[i] = s[i];          /* short: no memcpy call */
}

/* A miss in the set of entries i, i + 1: the string at idx (k) becomes entry i, the old
** entry i moves to i + 1 (with its string: user value j + 1 holds entry j's). */
static void kcache_fill(lua_State *L, int idx, KCache *kc, size_t i, const KeyRef *k) {
  lua_getiuservalue(L, KCACHE_UV, (int)i + 1);
  lua_setiuservalue(L, KCACHE_UV, (int)i + 2);
  kc->e[i + 1] = kc->e[i];
  lua_pushvalue(L, idx);                        /* keep it alive */
  lua_setiuservalue(L, KCACHE_UV, (int)i + 1);
  kc->e[i].s = k->s;
  kc->e[i].hash = lt_hash_str(k->s, k->len);
  if (k->tag == K_SSTR) sstr_cell(&kc->e[i].cell, k->s, k->len);
}

/* Set k's hash, and its cell if a short string (k->s, k->len: the string at idx). */
static LT_INLINE void str_key(lua_State *L, int idx, KeyRef *k, KCache *kc) {
  if (kc != NULL && k->len <= KC_MAXLEN) {
    size_t i = (((uintptr_t)k->s >> 4 ^ (uintptr_t)k->s >> 9) & (KC_SIZE / 2 - 1)) * 2;
    if (kc->e[i].s != k->s) {
      if (kc->e[i + 1].s == k->s) i++;
      else kcache_fill(L, idx, kc, i, k);
    }
    k->hash = kc->e[i].hash;
    k->cell = kc->e[i].cell;                    /* (used only if K_SSTR) */
    return;
  }
  k->hash = lt_hash_str(k->s, k->len);
  if (k->tag == K_SSTR) sstr_cell(&k->cell, k->s, k->len);
}

/* Read the key at idx.  Raises on a key that cannot be one (nothing owned yet).  Only the
** fields of its tag are set (the hot path of every access: no memset).  kc: the state's
** KCache, which the calling C function holds as upvalue 1, or NULL (no caching). */
static LT_INLINE void keyref(lua_State *L, int idx, KeyRef *k, KCache *kc) {
  int t = lua_type(L, idx);
  if (t != LUA_TSTRING) {
    lt_keyref_other(L, idx, k, t);
    return;
  }
  k->s = lua_tolstring(L, idx, &k->len);
  k->tag = k->len <= SSTR_MAX ? K_SSTR : K_LSTR;
  str_key(L, idx, k, kc);
}

static LT_INLINE int key_eq(const Cell *c, const KeyRef *k) {
  if (k->tag == K_SSTR) {                      /* the common key: tag, length and bytes */
    uint64_t a[2], b[2];
    memcpy(a, c, sizeof a);
    memcpy(b, &k->cell, sizeof b);
    return a[0] == b[0] && a[1] == b[1];
  }
  if (c->tag != k->tag) return 0;
  switch (k->tag) {
    case K_INT: return c->v.i == k->i;
    case K_FLT: return c->v.n == k->n;
    case K_LSTR: return c->v.b->len == k->len && memcmp(c->v.b->data, k->s, k->len) == 0;
    case K_OBJ: return c->v.o == k->o;
    default: return 1;
  }
}

/*
** The stored form of a key.  A long string key needs a Blob: made before locking by
** key_prepare (may raise), used by key_store if the key is new, else released.
*/
static Blob *key_prepare(lua_State *L, const KeyRef *k) {
  Blob *b;
  if (k->tag != K_LSTR) return NULL;
  if ((b = blob_str(k->s, k->len)) == NULL) luaL_error(L, "not enough memory");
  return b;
}

/* Fill the stored key (under the lock: no raise).  Takes over *kb when used.  An object key
** holds a reference -- except the Shared itself as its own key (s[s] = v), which would be a
** reference cycle: see key_drop. */
static void key_store(Cell *c, const KeyRef *k, Blob **kb, const lt_Object *owner) {
  c->tag = (unsigned char)k->tag;
  switch (k->tag) {
    case K_INT: c->v.i = k->i; break;
    case K_FLT: c->v.n = k->n; break;
    case K_SSTR: *c = k->cell; break;
    case K_LSTR: c->v.b = *kb; *kb = NULL; break;
    case K_OBJ: c->v.o = k->o; if (k->o != owner) lt_incref(k->o); break;
    default: break;
  }
}

static void key_push(lua_State *L, const Cell *c) {
  switch (c->tag) {
    case K_FALSE: lua_pushboolean(L, 0); break;
    case K_TRUE: lua_pushboolean(L, 1); break;
    case K_INT: lua_pushinteger(L, c->v.i); break;
    case K_FLT: lua_pushnumber(L, c->v.n); break;
    case K_SSTR: lua_pushlstring(L, CSTR(c), c->len); break;
    case K_LSTR: lua_pushlstring(L, c->v.b->data, c->v.b->len); break;
    default: lt_pushobject(L, c->v.o);
  }
}

/* Take / drop the references a copy of a key or value holds. */
static void key_retain(const Cell *c) {
  if (c->tag == K_LSTR) blob_retain(c->v.b);
  else if (c->tag == K_OBJ) lt_incref(c->v.o);
}
static void key_release(Cell *c) {
  if (c->tag == K_LSTR) blob_release(c->v.b);
  else if (c->tag == K_OBJ) lt_decref(c->v.o);
  c->tag = K_EMPTY;
}
/* Drop a key that was stored in s's map (never under the lock: may destroy an object). */
static void key_drop(Cell *c, const lt_Object *owner) {
  if (c->tag == K_OBJ && c->v.o == owner) c->tag = K_EMPTY;
  else key_release(c);
}
static void val_retain(const Cell *c) { if (c->tag == V_BLOB) blob_retain(c->v.b); }
static void val_release(Cell *c) {
  if (c->tag == V_BLOB) blob_release(c->v.b);
  c->tag = V_FALSE;
}

/* Encode the value at idx (not nil).  May raise, owning nothing then. */
static void val_encode(lua_State *L, int idx, Cell *c, lt_Object *owner) {
  static const char *const names[] = { "value" };
  switch (lua_type(L, idx)) {
    case LUA_TBOOLEAN: c->tag = lua_toboolean(L, idx) ? V_TRUE : V_FALSE; return;
    case LUA_TNUMBER:
      if (lua_isinteger(L, idx)) { c->tag = V_INT; c->v.i = lua_tointeger(L, idx); }
      else { c->tag = V_FLT; c->v.n = lua_tonumber(L, idx); }
      return;
    case LUA_TSTRING: {
      size_t len;
      const char *s = lua_tolstring(L, idx, &len);
      if (len <= SSTR_MAX) {
        c->tag = V_SSTR; c->len = (unsigned char)len; memcpy(CSTR(c), s, len);
      } else {
        if ((c->v.b = blob_str(s, len)) == NULL) luaL_error(L, "not enough memory");
        c->tag = V_BLOB;
      }
      return;
    }
    default: {
      lt_Buf *buf = lt_encode_owned(L, idx, 1, names, owner);
      Blob *b = (Blob *)malloc(sizeof(Blob));
      if (b == NULL) { lt_buf_free(buf); luaL_error(L, "not enough memory"); }
      atomic_init(&b->refs, 1);
      b->buf = buf;
      b->len = 0;
      c->tag = V_BLOB;
      c->v.b = b;
    }
  }
}

/* Push a value.  A Blob holding an lt_Buf may raise: call under lua_pcall. */
static void val_push(lua_State *L, const Cell *c) {
  switch (c->tag) {
    case V_FALSE: lua_pushboolean(L, 0); break;
    case V_TRUE: lua_pushboolean(L, 1); break;
    case V_INT: lua_pushinteger(L, c->v.i); break;
    case V_FLT: lua_pushnumber(L, c->v.n); break;
    case V_SSTR: lua_pushlstring(L, CSTR(c), c->len); break;
    default:
      if (c->v.b->buf == NULL) lua_pushlstring(L, c->v.b->data, c->v.b->len);
      else if (lt_decode(L, c->v.b->buf) != 1) luaL_error(L, "corrupt Shared value");
  }
}

static int val_push_p(lua_State *L) {
  val_push(L, (const Cell *)lua_touserdata(L, 1));
  return 1;
}

/* Push a copy taken under the lock (with its reference), then drop the reference. */
static void val_deliver(lua_State *L, Cell *c) {
  int status;
  if (c->tag != V_BLOB) { val_push(L, c); return; }
  lua_pushcfunction(L, val_push_p);
  lua_pushlightuserdata(L, c);
  status = lua_pcall(L, 1, 1, 0);
  val_release(c);
  if (status != LUA_OK) lua_error(L);
}

/* ========================================================================= SHARED */

typedef struct Shared {
  lt_Object obj;
  lt_RawLock mu;
  atomic_uintptr_t owner;      /* the thread in update() holding mu, or 0 */
  Entry *slots;                /* cap slots (a power of two, or 0) */
  size_t cap, count;
  lua_Integer border;          /* see LENGTH above */
} Shared;

static void shared_destroy(lt_Object *o) {
  Shared *s = (Shared *)o;
  size_t i;
  for (i = 0; i < s->cap; i++)
    if (s->slots[i].key.tag != K_EMPTY) {
      key_drop(&s->slots[i].key, &s->obj);
      val_release(&s->slots[i].val);
    }
  free(s->slots);
  free(s);
}

static void shared_metatable(lua_State *L);
static const lt_Class SharedClass = { "Shared", 0, shared_destroy, shared_metatable };

static Shared *checkshared(lua_State *L) {
  return (Shared *)lt_checkself(L, &SharedClass);
}

/* The Shared of the proxy at idx (lt_fastproxy's test), or NULL; and *kc: the state's
** KCache, for a function that holds it as upvalue 1: the proxy keeps it (lt_Proxy.cache)
** from its first such call on, which spares the upvalue's lookup on every access.  (A
** proxy and the functions called on it belong to one Lua state, hence one KCache.) */
static LT_INLINE Shared *sharedproxy(lua_State *L, int idx, KCache **kc) {
  lt_Proxy *p = lt_fastproxy(L, idx);
  if (LT_LIKELY(p != NULL && p->cls == &SharedClass)) {
    if (LT_UNLIKELY(p->cache == NULL)) p->cache = lua_touserdata(L, KCACHE_UV);
    *kc = (KCache *)p->cache;
    return (Shared *)p->obj;
  }
  *kc = NULL;
  return NULL;
}

/* checkshared, with *kc as sharedproxy's. */
static LT_INLINE Shared *checkshared_kc(lua_State *L, KCache **kc) {
  Shared *s = sharedproxy(L, 1, kc);
  return LT_LIKELY(s != NULL) ? s : checkshared(L);   /* (which raises) */
}

/* Take the lock, unless this thread holds it already in update(): then 0, holding nothing.
** A free lock is taken first, without looking at owner: nobody is in update() then.  (So
** the uncontended path makes one access to the lock's cache line, the CAS, not a read
** and then the CAS.) */
static int slock_unless_mine(Shared *s) {
  if (LT_LIKELY(lt_rawlock_acquire(&s->mu, 0, LT_FOREVER))) return 1;
  if (atomic_load_explicit(&s->owner, memory_order_relaxed) == lt_thread_ident()) return 0;
  lt_rawlock_acquire(&s->mu, 1, LT_FOREVER);
  return 1;
}

/* Take the lock; raise (holding nothing) if this thread holds it already in update(). */
static void slock(lua_State *L, Shared *s) {
  if (!slock_unless_mine(s))
    luaL_error(L, "Shared accessed from inside its own update() function");
}

static void sunlock(Shared *s) { lt_rawlock_release(&s->mu); }

/* ------------------------------------------------------------------ the hash map */

static LT_INLINE Entry *find(Shared *s, const KeyRef *k) {
  size_t mask, i;
  if (s->count == 0) return NULL;
  mask = s->cap - 1;
  for (i = (size_t)k->hash & mask;; i = (i + 1) & mask) {
    Entry *e = &s->slots[i];
    if (e->key.tag == K_EMPTY) return NULL;
    if (e->hash == k->hash && key_eq(&e->key, k)) return e;
  }
}

static int has_int(Shared *s, lua_Integer i) {
  KeyRef k;
  k.tag = K_INT; k.i = i; k.hash = lt_hash_int(i);
  return find(s, &k) != NULL;
}

/* Make room for one more entry (under the lock).  0: out of memory. */
static int grow(Shared *s) {
  size_t ncap, i;
  Entry *ns;
  if ((s->count + 1) * 4 <= s->cap * 3) return 1;
  ncap = s->cap ? s->cap * 2 : 8;
  ns = (Entry *)calloc(ncap, sizeof *ns);
  if (ns == NULL) return 0;
  for (i = 0; i < s->cap; i++) {
    Entry *e = &s->slots[i];
    size_t j;
    if (e->key.tag == K_EMPTY) continue;
    for (j = (size_t)e->hash & (ncap - 1); ns[j].key.tag != K_EMPTY; j = (j + 1) & (ncap - 1)) {}
    ns[j] = *e;
  }
  free(s->slots);
  s->slots = ns;
  s->cap = ncap;
  return 1;
}

/* A new entry for k (under the lock; grow() succeeded; k absent). */
static Entry *insert(Shared *s, const KeyRef *k, Blob **kb) {
  size_t mask = s->cap - 1, i;
  for (i = (size_t)k->hash & mask; s->slots[i].key.tag != K_EMPTY; i = (i + 1) & mask) {}
  s->slots[i].hash = k->hash;
  key_store(&s->slots[i].key, k, kb, &s->obj);
  s->count++;
  return &s->slots[i];
}

/* Remove e, moving its key and value to *key, *val for release after unlocking. */
static void erase(Shared *s, Entry *e, Cell *key, Cell *val) {
  size_t mask = s->cap - 1, i = (size_t)(e - s->slots), j = i;
  *key = e->key;
  *val = e->val;
  for (;;) {                               /* backward-shift deletion */
    size_t home;
    j = (j + 1) & mask;
    if (s->slots[j].key.tag == K_EMPTY) break;
    home = (size_t)s->slots[j].hash & mask;
    if (((j - home) & mask) >= ((j - i) & mask)) {   /* j may move back to i */
      s->slots[i] = s->slots[j];
      i = j;
    }
  }
  s->slots[i].key.tag = K_EMPTY;
  s->count--;
}

/* Keep `border` a border after t[k] was set (present) or removed (!present). */
static void fix_border(Shared *s, const KeyRef *k, int present) {
  if (k->tag != K_INT) return;
  if (present && k->i == s->border + 1) {
    do s->border++; while (s->border < LUA_MAXINTEGER && has_int(s, s->border + 1));
  } else if (!present && k->i == s->border) {
    do s->border--; while (s->border > 0 && !has_int(s, s->border));
  }
}

/* ------------------------------------------------------------ reads and writes */

/* Push s[k] (key at kidx). */
static int do_get(lua_State *L, Shared *s, int kidx, KCache *kc) {
  KeyRef k;
  Entry *e;
  Cell v;
  keyref(L, kidx, &k, kc);                 /* val_deliver's 3 slots: within LUA_MINSTACK */
  slock(L, s);
  e = find(s, &k);
  if (e) { v = e->val; val_retain(&v); }
  sunlock(s);
  if (e == NULL) lua_pushnil(L);
  else val_deliver(L, &v);
  return 1;
}

/* s[k] = v (key at kidx, value at vidx; nil removes). */
static void do_set(lua_State *L, Shared *s, int kidx, int vidx, KCache *kc) {
  KeyRef k;
  Entry *e;
  Cell newv, oldk, oldv;
  Blob *kb = NULL;
  int oom = 0;
  keyref(L, kidx, &k, kc);
  oldk.tag = K_EMPTY;
  oldv.tag = V_FALSE;
  oldv.v.b = NULL;                         /* (never read: quiets -Wmaybe-uninitialized) */
  if (lua_isnil(L, vidx)) {
    slock(L, s);
    if ((e = find(s, &k)) != NULL) { erase(s, e, &oldk, &oldv); fix_border(s, &k, 0); }
    sunlock(s);
  } else {
    val_encode(L, vidx, &newv, &s->obj);            /* may raise: nothing owned yet */
    if (k.tag == K_LSTR && (kb = blob_str(k.s, k.len)) == NULL) oom = 1;
    if (!oom) {
      if (!slock_unless_mine(s)) {
        val_release(&newv);
        blob_release(kb);
        luaL_error(L, "Shared accessed from inside its own update() function");
      }
      if ((e = find(s, &k)) != NULL) {
        oldv = e->val;
        e->val = newv;
      } else if (grow(s)) {
        insert(s, &k, &kb)->val = newv;
        fix_border(s, &k, 1);
      } else oom = 1;
      sunlock(s);
    }
    if (oom) val_release(&newv);
  }
  blob_release(kb);
  key_drop(&oldk, &s->obj);
  val_release(&oldv);
  if (oom) luaL_error(L, "not enough memory");
}

/* ======================================================================== METHODS */

/*
** METHOD LOOKUP.  s[k]: a method name gives the method (use s:get(k) for such keys); else
** the value.  The class metatable's __index is s_index, a C function, and a C call per
** lookup cost about as much as s:incr(k) itself.  So when a proxy has been used for
** OWN_MT_AFTER methods (counted in its flags), s_index gives it a metatable of its own: a
** copy of the class metatable whose __index is a table of the methods plus the proxy
** (under &K_SELF), and that table's metatable (one per state) sends any other key to
** s_tindex, which reads the data.  A method is then found by two table lookups, as in any
** C library's userdata.  That costs about 500 bytes per proxy: a proxy used for a few
** method calls only keeps the class metatable.
**   s_index's upvalues: 1 KCache, 2 the class metatable, 3 the methods, 4 the metatable of
**   the per-proxy method tables.
*/
static const char K_SELF = 0;
#define OWN_MT_AFTER 16

/* Give the proxy at 1 its own metatable (it has the class one). */
static void own_metatable(lua_State *L) {
  int i;
  luaL_checkstack(L, 6, NULL);
  lua_createtable(L, 0, 8);                             /* L: ... mt */
  lua_createtable(L, 0, 8);                             /* L: ... mt methods */
  for (i = 2; i <= 3; i++) {                            /* copy the class's tables */
    lua_pushnil(L);
    while (lua_next(L, lua_upvalueindex(i))) {
      lua_pushvalue(L, -2);
      lua_insert(L, -2);
      lua_rawset(L, i == 2 ? -5 : -4);
    }
  }
  lua_pushvalue(L, 1);
  lua_rawsetp(L, -2, &K_SELF);
  lua_pushvalue(L, lua_upvalueindex(4));
  lua_setmetatable(L, -2);
  lua_setfield(L, -2, "__index");                       /* L: ... mt */
  lua_setmetatable(L, 1);
}

static int s_index(lua_State *L) {
  KCache *kc;
  Shared *s = checkshared_kc(L, &kc);
  if (lua_type(L, 2) == LUA_TSTRING) {
    lua_pushvalue(L, 2);
    if (lua_rawget(L, lua_upvalueindex(3)) != LUA_TNIL) {  /* L: s k method */
      lt_Proxy *p = (lt_Proxy *)lua_touserdata(L, 1);        /* (checkshared passed) */
      if (p->flags < OWN_MT_AFTER && ++p->flags == OWN_MT_AFTER) {
        int mine;
        lua_getmetatable(L, 1);
        mine = lua_rawequal(L, -1, lua_upvalueindex(2));
        lua_pop(L, 1);
        if (mine) own_metatable(L);
      }
      return 1;
    }
    lua_pop(L, 1);
  }
  return do_get(L, s, 2, kc);
}

/* The data behind a proxy's own metatable: (its method table, k).  Upvalue 1: KCache. */
static int s_tindex(lua_State *L) {
  KCache *kc;
  Shared *s;
  if (lua_type(L, 1) != LUA_TTABLE) luaL_typeerror(L, 1, "table");
  lua_rawgetp(L, 1, &K_SELF);                           /* L: t k s */
  if ((s = sharedproxy(L, 3, &kc)) == NULL) {           /* not one, or collected: say so */
    lua_replace(L, 1);
    checkshared(L);
  }
  return do_get(L, s, 2, kc);
}

static int s_newindex(lua_State *L) {
  KCache *kc;
  Shared *s = checkshared_kc(L, &kc);
  do_set(L, s, 2, 3, kc);
  return 0;
}

static int s_get(lua_State *L) {
  KCache *kc;
  Shared *s = checkshared_kc(L, &kc);
  luaL_checkany(L, 2);
  return do_get(L, s, 2, kc);
}

static int s_set(lua_State *L) {
  KCache *kc;
  Shared *s = checkshared_kc(L, &kc);
  luaL_checkany(L, 2);
  lua_settop(L, 3);
  do_set(L, s, 2, 3, kc);
  return 0;
}

static int s_len(lua_State *L) {
  Shared *s = checkshared(L);
  lua_Integer n;
  slock(L, s);
  n = s->border;
  sunlock(s);
  lua_pushinteger(L, n);
  return 1;
}

/* s:incr(k, [delta = 1]) -> the new value; a missing key counts as 0. */
static int s_incr(lua_State *L) {
  KCache *kc;
  Shared *s = checkshared_kc(L, &kc);
  KeyRef k;
  Entry *e;
  Cell nv;
  Blob *kb;
  int isint = 1, bad = -1, oom = 0;
  lua_Integer di = 1;
  lua_Number dn = 0;
  switch (lua_type(L, 3)) {
    case LUA_TNONE: case LUA_TNIL: break;
    case LUA_TSTRING:                       /* as Lua's arithmetic: "2" is the integer 2 */
      if (lua_stringtonumber(L, lua_tostring(L, 3)) == 0) luaL_typeerror(L, 3, "number");
      lua_replace(L, 3);
      /* FALLTHROUGH */
    case LUA_TNUMBER:
      if ((isint = lua_isinteger(L, 3)) != 0) di = lua_tointeger(L, 3);
      else dn = lua_tonumber(L, 3);
      break;
    default: luaL_typeerror(L, 3, "number");
  }
  keyref(L, 2, &k, kc);
  kb = key_prepare(L, &k);
  if (!slock_unless_mine(s)) {
    blob_release(kb);
    return luaL_error(L, "Shared accessed from inside its own update() function");
  }
  e = find(s, &k);
  if (e == NULL) {
    if (isint) { nv.tag = V_INT; nv.v.i = di; }
    else { nv.tag = V_FLT; nv.v.n = dn; }
    if (grow(s)) { insert(s, &k, &kb)->val = nv; fix_border(s, &k, 1); }
    else oom = 1;
  } else if (e->val.tag == V_INT && isint) {
    e->val.v.i = (lua_Integer)((lua_Unsigned)e->val.v.i + (lua_Unsigned)di);
    nv = e->val;
  } else if (e->val.tag == V_INT || e->val.tag == V_FLT) {
    lua_Number old = e->val.tag == V_INT ? (lua_Number)e->val.v.i : e->val.v.n;
    e->val.tag = V_FLT;
    e->val.v.n = old + (isint ? (lua_Number)di : dn);
    nv = e->val;
  } else {
    bad = e->val.tag;
  }
  sunlock(s);
  blob_release(kb);
  if (oom) return luaL_error(L, "not enough memory");
  if (bad >= 0) {
    const char *what = bad == V_TRUE || bad == V_FALSE ? "boolean" : bad == V_SSTR ? "string"
                       : "non-number";
    return luaL_error(L, "attempt to perform arithmetic on a %s value (Shared key %s)", what,
                      luaL_tolstring(L, 2, NULL));
  }
  if (nv.tag == V_INT) lua_pushinteger(L, nv.v.i);
  else lua_pushnumber(L, nv.v.n);
  return 1;
}

/* ------------------------------------------------------------- append, pop */

/* s:append(v) -> the new length: s[#s + 1] = v in one step (table.insert(s, v) is two:
** reading #s, then writing, so appends from several threads could land on one index). */
static int s_append(lua_State *L) {
  Shared *s = checkshared(L);
  KeyRef k;
  Cell newv;
  Blob *none = NULL;
  lua_Integer n = 0;
  int oom = 0, full = 0;
  luaL_checkany(L, 2);
  if (lua_isnil(L, 2)) return luaL_argerror(L, 2, "cannot append nil");
  val_encode(L, 2, &newv, &s->obj);                     /* may raise: nothing owned yet */
  if (!slock_unless_mine(s)) {
    val_release(&newv);
    return luaL_error(L, "Shared accessed from inside its own update() function");
  }
  k.tag = K_INT;
  if (s->border == LUA_MAXINTEGER) full = 1;
  else if (!grow(s)) oom = 1;
  else {                                  /* s[border + 1] is nil: see LENGTH */
    k.i = s->border + 1;
    k.hash = lt_hash_int(k.i);
    insert(s, &k, &none)->val = newv;
    fix_border(s, &k, 1);
    n = s->border;
  }
  sunlock(s);
  if (full || oom) {
    val_release(&newv);
    return luaL_error(L, full ? "Shared array is full" : "not enough memory");
  }
  lua_pushinteger(L, n);
  return 1;
}

/* s:pop() -> s[#s], removed in the same step; nil when #s == 0.  If the value cannot be
** rebuilt in this thread, pop raises and the item is appended back. */
static int s_pop(lua_State *L) {
  Shared *s = checkshared(L);
  KeyRef k;
  Entry *e = NULL;
  Cell oldk, oldv;
  if (!lua_isnoneornil(L, 2))
    return luaL_argerror(L, 2, "no index expected (pop removes s[#s]; table.remove(s, i) "
                         "removes s[i], not atomically)");
  k.tag = K_INT;                          /* val_deliver's 3 slots: within LUA_MINSTACK */
  slock(L, s);
  if (s->border > 0) {
    k.i = s->border;
    k.hash = lt_hash_int(k.i);
    if ((e = find(s, &k)) != NULL) { erase(s, e, &oldk, &oldv); fix_border(s, &k, 0); }
  }
  sunlock(s);
  if (e == NULL) {
    lua_pushnil(L);
    return 1;
  }
  key_drop(&oldk, &s->obj);
  if (oldv.tag == V_BLOB) {               /* decoding may fail here (a module this thread
                                          ** cannot require, nesting past its stack): then
                                          ** the item goes back to the end, not lost */
    int status;
    lua_pushcfunction(L, val_push_p);
    lua_pushlightuserdata(L, &oldv);
    status = lua_pcall(L, 1, 1, 0);
    if (status != LUA_OK) {
      Blob *none = NULL;
      lt_rawlock_acquire(&s->mu, 1, LT_FOREVER);
      if (s->border < LUA_MAXINTEGER && grow(s)) {
        k.i = s->border + 1;
        k.hash = lt_hash_int(k.i);
        insert(s, &k, &none)->val = oldv;
        fix_border(s, &k, 1);
        oldv.tag = V_FALSE;               /* the map owns it again */
      }
      sunlock(s);
    }
    val_release(&oldv);
    if (status != LUA_OK) return lua_error(L);
    return 1;
  }
  val_push(L, &oldv);
  return 1;
}

/* ------------------------------------------------------------------- update */

typedef struct Upd {
  Shared *s;
  KeyRef k;
  Cell newv;                   /* the encoded result, once made */
  int have;
} Upd;

/* lua_pcall'd with the lock held: 1: Upd*, 2: f.  Pushes old value, calls f, encodes. */
static int update_body(lua_State *L) {
  Upd *u = (Upd *)lua_touserdata(L, 1);
  Entry *e = find(u->s, &u->k);
  lua_settop(L, 2);
  lua_pushvalue(L, 2);                                  /* L: u f f */
  if (e) val_push(L, &e->val);
  else lua_pushnil(L);
  lua_call(L, 1, 1);                                    /* L: u f new */
  if (!lua_isnil(L, 3)) {
    val_encode(L, 3, &u->newv, &u->s->obj);
    u->have = 1;
  }
  return 1;
}

/* s:update(k, f): s[k] = f(s[k]) atomically; returns the new value.  If f raises, nothing
** changes.  f runs with the table locked: it must not touch this Shared (an error). */
static int s_update(lua_State *L) {
  KCache *kc;
  Shared *s = checkshared_kc(L, &kc);
  Upd u;
  Entry *e;
  Cell oldk, oldv;
  Blob *kb;
  int status, oom = 0;
  keyref(L, 2, &u.k, kc);
  luaL_checkany(L, 3);
  lua_settop(L, 3);
  luaL_checkstack(L, 6, NULL);
  kb = key_prepare(L, &u.k);
  u.s = s;
  u.have = 0;
  oldk.tag = K_EMPTY;
  oldv.tag = V_FALSE;
  if (atomic_load_explicit(&s->owner, memory_order_relaxed) == lt_thread_ident()) {
    blob_release(kb);
    return luaL_error(L, "Shared accessed from inside its own update() function");
  }
  lua_pushcfunction(L, update_body);
  lua_pushlightuserdata(L, &u);
  lua_pushvalue(L, 3);                                  /* L: s k f body u f */
  lt_rawlock_acquire(&s->mu, 1, LT_FOREVER);
  atomic_store_explicit(&s->owner, lt_thread_ident(), memory_order_relaxed);
  status = lua_pcall(L, 2, 1, 0);                       /* L: s k f result|err */
  atomic_store_explicit(&s->owner, 0, memory_order_relaxed);
  if (status == LUA_OK) {
    e = find(s, &u.k);
    if (!u.have) {                                      /* f returned nil: remove */
      if (e) { erase(s, e, &oldk, &oldv); fix_border(s, &u.k, 0); }
    } else if (e) {
      oldv = e->val;
      e->val = u.newv;
    } else if (grow(s)) {
      insert(s, &u.k, &kb)->val = u.newv;
      fix_border(s, &u.k, 1);
    } else {
      oom = 1;
      oldv = u.newv;
    }
  }
  sunlock(s);
  blob_release(kb);
  key_drop(&oldk, &s->obj);
  val_release(&oldv);
  if (status != LUA_OK) return lua_error(L);
  if (oom) return luaL_error(L, "not enough memory");
  return 1;
}

/* ---------------------------------------------------------------- iteration */

typedef struct Snap { Entry *e; size_t n; int seq; } Snap;

/* lua_pcall'd: build a plain table from the snapshot (seq: the array k1, v1, k2, v2, ...
** instead, in the map's order).  1: Snap* */
static int snap_build(lua_State *L) {
  Snap *sn = (Snap *)lua_touserdata(L, 1);
  size_t i;
  if (sn->seq) {
    if (sn->n > (size_t)INT_MAX / 2 - 1) luaL_error(L, "Shared too large to iterate");
    lua_createtable(L, (int)(2 * sn->n), 0);
    for (i = 0; i < sn->n; i++) {
      key_push(L, &sn->e[i].key);
      lua_rawseti(L, -2, (lua_Integer)(2 * i + 1));
      val_push(L, &sn->e[i].val);
      lua_rawseti(L, -2, (lua_Integer)(2 * i + 2));
    }
    return 1;
  }
  lua_createtable(L, 0, (int)(sn->n < 1u << 20 ? sn->n : 1u << 20));
  for (i = 0; i < sn->n; i++) {
    key_push(L, &sn->e[i].key);
    val_push(L, &sn->e[i].val);
    lua_rawset(L, -3);
  }
  return 1;
}

/* Push a plain table copy of s, taken atomically (seq: see snap_build). */
static void snapshot(lua_State *L, Shared *s, int seq) {
  Snap sn;
  size_t i;
  int status;
  luaL_checkstack(L, 6, NULL);
  slock(L, s);
  sn.n = s->count;
  sn.seq = seq;
  sn.e = (Entry *)malloc((sn.n ? sn.n : 1) * sizeof(Entry));
  if (sn.e != NULL) {
    size_t j = 0;
    for (i = 0; i < s->cap && j < sn.n; i++) {
      Entry *e = &s->slots[i];
      if (e->key.tag == K_EMPTY) continue;
      sn.e[j] = *e;
      key_retain(&e->key);
      val_retain(&e->val);
      j++;
    }
  }
  sunlock(s);
  if (sn.e == NULL) luaL_error(L, "not enough memory");
  lua_pushcfunction(L, snap_build);
  lua_pushlightuserdata(L, &sn);
  status = lua_pcall(L, 1, 1, 0);
  for (i = 0; i < sn.n; i++) { key_release(&sn.e[i].key); val_release(&sn.e[i].val); }
  free(sn.e);
  if (status != LUA_OK) lua_error(L);
}

/* The pairs iterator: upvalues: the snapshot array, the position of the next key. */
static int snap_next(lua_State *L) {
  lua_Integer i = lua_tointeger(L, lua_upvalueindex(2));
  if (lua_rawgeti(L, lua_upvalueindex(1), i) == LUA_TNIL) return 1;
  lua_rawgeti(L, lua_upvalueindex(1), i + 1);
  lua_pushinteger(L, i + 2);
  lua_replace(L, lua_upvalueindex(2));
  return 2;
}

/* pairs(s): iterates over a snapshot taken when the loop starts, in the map's order (which
** depends on the process's hash seed: it differs between runs, as Lua's own does). */
static int s_pairs(lua_State *L) {
  Shared *s = checkshared(L);
  snapshot(L, s, 1);
  lua_pushinteger(L, 1);
  lua_pushcclosure(L, snap_next, 2);
  return 1;
}

/* s:snapshot() -> a plain table copy, taken atomically. */
static int s_snapshot(lua_State *L) {
  snapshot(L, checkshared(L), 0);
  return 1;
}

static int s_tostring(lua_State *L) {
  Shared *s = checkshared(L);
  lua_pushfstring(L, "Shared: %p", (void *)s);
  return 1;
}

/* ============================================================================ OPEN */

static void shared_metatable(lua_State *L) {
  static const luaL_Reg meth[] = {
    {"get", s_get}, {"set", s_set}, {"update", s_update}, {"incr", s_incr},
    {"append", s_append}, {"pop", s_pop}, {"snapshot", s_snapshot}, {NULL, NULL}
  };
  static const luaL_Reg metameth[] = {
    {"__newindex", s_newindex}, {"__len", s_len}, {"__pairs", s_pairs},
    {"__tostring", s_tostring}, {NULL, NULL}
  };
  KCache *kc;
  lt_classmetatable(L, &SharedClass, NULL, NULL);             /* L: mt */
  kc = (KCache *)lt_newuserdata(L, sizeof *kc, KC_SIZE);      /* L: mt kc */
  memset(kc, 0, sizeof *kc);
  lua_newtable(L);
  lua_pushvalue(L, -2);
  luaL_setfuncs(L, meth, 1);                                  /* L: mt kc methods */
  lua_pushvalue(L, -3);
  lua_pushvalue(L, -3);
  luaL_setfuncs(L, metameth, 1);                              /* L: mt kc methods mt */
  lua_pop(L, 1);
  lua_createtable(L, 0, 1);                                   /* L: mt kc methods tmeta */
  lua_pushvalue(L, -3);
  lua_pushcclosure(L, s_tindex, 1);
  lua_setfield(L, -2, "__index");
  lua_pushvalue(L, -3);
  lua_pushvalue(L, -5);
  lua_pushvalue(L, -4);
  lua_pushvalue(L, -4);                                       /* L: ... kc mt methods tmeta */
  lua_pushcclosure(L, s_index, 4);
  lua_setfield(L, -5, "__index");
  lua_pop(L, 3);                                              /* L: mt */
}

/* Shared([init]): init's pairs are copied in (as s[k] = v each). */
static int f_shared(lua_State *L) {
  Shared *s;
  if (!lua_isnoneornil(L, 1)) luaL_checktype(L, 1, LUA_TTABLE);
  lua_settop(L, 1);
  lt_seed_init();
  s = (Shared *)lt_newobject(L, &SharedClass, sizeof(Shared));    /* L: init s */
  atomic_init(&s->mu.word, 0);
  atomic_init(&s->owner, 0);
  if (lua_istable(L, 1)) {
    lua_pushnil(L);
    while (lua_next(L, 1)) {                                      /* L: init s k v */
      int t = lua_type(L, 3);
      if (t != LUA_TSTRING && t != LUA_TNUMBER && t != LUA_TBOOLEAN && !lt_toproxy(L, 3))
        return luaL_error(L, "bad argument #1 to 'Shared' (keys are strings, numbers, booleans "
                          "or lthreading objects, got a %s key)", luaL_typename(L, 3));
      do_set(L, s, 3, 4, NULL);
      lua_pop(L, 1);
    }
  }
  return 1;
}

void lt_open_shared(lua_State *L) {
  lua_pushcfunction(L, f_shared);
  lua_setfield(L, -2, "Shared");
}
