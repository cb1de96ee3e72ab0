/* agent-sim entry point (work in progress: the server lands next). */
#include <stdio.h>

int main(void)
{
    fprintf(stderr, "agent-sim: not built yet\n");
    return 2;
}
