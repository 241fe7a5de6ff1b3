/*
** queue.h -- what queue.c (storage, blocking, methods) and queue_item.c (marshaling an
** item, priority keys) share.  Private to those two files.
**
** An Item is one queued value, 16 bytes: booleans, numbers and strings of up to 14 bytes
** inline, longer strings one malloc'd block (I_LSTR), anything else an lt_Buf (I_BUF).
** A PEntry is an Item with its priority key (PriorityQueue) and sequence number.
** Nothing here takes a lock; what may raise is said at each function.
*/
#ifndef LT_QUEUE_H
#define LT_QUEUE_H

#include "lthreading.h"

enum { I_FALSE, I_TRUE, I_INT, I_FLT, I_SSTR, I_LSTR, I_BUF };

typedef struct Item {
  unsigned char tag, len;      /* len: I_SSTR length */
  char s[6];                   /* an I_SSTR spans s[] and v: 14 bytes */
  union { lua_Integer i; lua_Number n; void *p; } v;
} Item;
#define SSTR_MAX (sizeof(Item) - offsetof(Item, s))
#define SSTR(it) ((char *)(it) + offsetof(Item, s))

typedef struct LStr { size_t len; char data[1]; } LStr;

static inline int item_heavy(const Item *it) { return it->tag >= I_LSTR; }

/*
** Where an item comes from, for its error messages: argument `arg` of the method, and
** `index` its position in put_many's array (0: put's own item).  put_many's errors name
** the item: "bad argument #1 to 'put_many' (item [2]: nil is not a valid queue item ...)".
*/
typedef struct ItemSrc { int arg; lua_Integer index; } ItemSrc;

enum { K_INT, K_FLT, K_STR };
typedef struct PKey {
  int tag;
  union { lua_Integer i; lua_Number n; struct { char *s; size_t len; } str; } u;
} PKey;

typedef struct PEntry { Item item; PKey key; unsigned long long seq; } PEntry;

/* Items (queue_item.c) */
/* Free what the item owns (never raises; an I_BUF may run an object's destructor). */
void lt_item_free(Item *it);
/* Encode the value at idx into *it.  May raise; then nothing is owned. */
void lt_item_encode(lua_State *L, int idx, Item *it, lt_Object *owner, const ItemSrc *src);
/* Push an item (does not free it).  For heavy items call under lua_pcall. */
void lt_item_push(lua_State *L, const Item *it);
/* Push a popped item and free it; on error it is freed before the error propagates. */
void lt_item_deliver(lua_State *L, Item *it);

/* Priorities (queue_item.c) */
int  lt_entry_lt(const PEntry *a, const PEntry *b);   /* by key, then sequence number */
/* The heap (under the queue's lock; never raises): push *e (seq set) as heap[n], the n
** entries before it a heap; pop heap[0]'s item into *out, freeing its key. */
void lt_heap_push(PEntry *heap, size_t n, const PEntry *e);
void lt_heap_pop(PEntry *heap, size_t n, Item *out);
void lt_entry_free(PEntry *e);
void lt_key_free(PKey *k);
/* Push the priority of the item at idx (a table whose first element is a number or a
** string), checked.  May raise (owning nothing). */
void lt_key_fetch(lua_State *L, int idx, const ItemSrc *src);
/* Fill *k from the checked priority at idx, copying a string; never raises: 0 when out of
** memory. */
int  lt_key_copy(lua_State *L, int idx, PKey *k);

/* Batches (queue_item.c): the entries of a put_many between encoding and storing, in a
** userdata so that an error while encoding (or a memory error) frees them: its __gc frees
** e[done .. n).  lt_batch_new pushes one with room for n entries (n = done = 0). */
typedef struct Batch { size_t n, done; PEntry e[1]; } Batch;
Batch *lt_batch_new(lua_State *L, size_t n);

#endif
