/* String-keyed hash map; see strmap.h. */
#include "dataplane/strmap.h"

#include <stdlib.h>
#include <string.h>

typedef struct entry {
    struct entry *next;  /* owned; chain */
    uint64_t hash;       /* of the key */
    size_t key_len;      /* key bytes, stored after the value */
    max_align_t value[]; /* value_size bytes, then the key */
} entry_t;

struct sy_strmap {
    entry_t **slots;   /* owned; n_slots chains */
    size_t n_slots;    /* power of two */
    size_t count;      /* entries */
    size_t value_size; /* bytes per value, rounded up to max_align_t */
};

static uint64_t hash(sy_str_t k)
{
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < k.len; i++) {
        h ^= (unsigned char)k.ptr[i];
        h *= 1099511628211ULL;
    }
    return h ^ (h >> 29);
}

static const char *key_of(const sy_strmap_t *m, const entry_t *e)
{
    return (const char *)e->value + m->value_size;
}

sy_strmap_t *sy_strmap_new(size_t value_size)
{
    sy_strmap_t *m = calloc(1, sizeof(*m));
    if (m == NULL)
        return NULL;
    size_t a = sizeof(max_align_t);
    m->value_size = (value_size + a - 1) / a * a;
    m->n_slots = 64;
    m->slots = calloc(m->n_slots, sizeof(*m->slots));
    if (m->slots == NULL) {
        free(m);
        return NULL;
    }
    return m;
}

void sy_strmap_free(sy_strmap_t *m)
{
    if (m == NULL)
        return;
    for (size_t i = 0; i < m->n_slots; i++) {
        entry_t *e = m->slots[i];
        while (e != NULL) {
            entry_t *n = e->next;
            free(e);
            e = n;
        }
    }
    free(m->slots);
    free(m);
}

static entry_t *find(const sy_strmap_t *m, sy_str_t key, uint64_t h)
{
    for (entry_t *e = m->slots[h & (m->n_slots - 1)]; e != NULL; e = e->next)
        if (e->hash == h && e->key_len == key.len &&
            (key.len == 0 || memcmp(key_of(m, e), key.ptr, key.len) == 0))
            return e;
    return NULL;
}

void *sy_strmap_get(const sy_strmap_t *m, sy_str_t key)
{
    entry_t *e = find(m, key, hash(key));
    return e ? e->value : NULL;
}

static void grow(sy_strmap_t *m)
{
    size_t n = m->n_slots * 2;
    entry_t **slots = calloc(n, sizeof(*slots));
    if (slots == NULL)
        return; /* keep the longer chains; still correct */
    for (size_t i = 0; i < m->n_slots; i++) {
        entry_t *e = m->slots[i];
        while (e != NULL) {
            entry_t *next = e->next;
            e->next = slots[e->hash & (n - 1)];
            slots[e->hash & (n - 1)] = e;
            e = next;
        }
    }
    free(m->slots);
    m->slots = slots;
    m->n_slots = n;
}

void *sy_strmap_upsert(sy_strmap_t *m, sy_str_t key, bool *created)
{
    uint64_t h = hash(key);
    entry_t *e = find(m, key, h);
    if (e != NULL) {
        if (created != NULL)
            *created = false;
        return e->value;
    }
    e = calloc(1, sizeof(*e) + m->value_size + key.len + 1);
    if (e == NULL)
        return NULL;
    e->hash = h;
    e->key_len = key.len;
    if (key.len > 0)
        memcpy((char *)e->value + m->value_size, key.ptr, key.len);
    e->next = m->slots[h & (m->n_slots - 1)];
    m->slots[h & (m->n_slots - 1)] = e;
    m->count++;
    if (m->count > m->n_slots)
        grow(m);
    if (created != NULL)
        *created = true;
    return e->value;
}

void sy_strmap_sweep(sy_strmap_t *m, bool (*fn)(sy_str_t key, void *value, void *arg), void *arg)
{
    for (size_t i = 0; i < m->n_slots; i++) {
        entry_t **pp = &m->slots[i];
        while (*pp != NULL) {
            entry_t *e = *pp;
            if (fn((sy_str_t){key_of(m, e), e->key_len}, e->value, arg)) {
                *pp = e->next;
                free(e);
                m->count--;
            } else {
                pp = &e->next;
            }
        }
    }
}

size_t sy_strmap_count(const sy_strmap_t *m)
{
    return m->count;
}
