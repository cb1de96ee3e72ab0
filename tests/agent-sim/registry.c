/* Behaviour registry: behaviour files register themselves from a constructor
 * so new session types need no edit here. */
#include <string.h>

#include "behaviour.h"

#define SIM_MAX_BEHAVIOURS 32

static const sim_behaviour *g_behaviours[SIM_MAX_BEHAVIOURS];
static size_t g_count;

void sim_behaviour_register(const sim_behaviour *b)
{
    if (b == NULL || g_count >= SIM_MAX_BEHAVIOURS)
        return;
    g_behaviours[g_count++] = b;
}

const sim_behaviour *sim_behaviour_find(const char *document)
{
    if (document == NULL || document[0] == '\0')
        document = "SSM-SessionManagerRunShell";
    /* Newest registration first so a later file can override a document. */
    for (size_t i = g_count; i-- > 0;) {
        const char *const *d = g_behaviours[i]->documents;
        for (; d != NULL && *d != NULL; d++)
            if (strcmp(*d, document) == 0)
                return g_behaviours[i];
    }
    return NULL;
}
