/* termios handling: save once, cbreak, restore on every exit path. */
#include "terminal.h"

#include <stdlib.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

static struct termios saved;
static volatile int have_saved; /* 1 while cbreak is active */
static bool atexit_done;

void ssm_term_restore(void)
{
    if (!have_saved)
        return;
    struct termios t = saved;
    t.c_lflag |= ECHO;
    tcsetattr(0, TCSADRAIN, &t);
    have_saved = 0;
}

bool ssm_term_cbreak(void)
{
    if (!isatty(0) || tcgetattr(0, &saved) < 0)
        return false;
    struct termios t = saved;
    t.c_lflag &= ~(tcflag_t)(ICANON | ECHO);
    t.c_cc[VMIN] = 1;
    t.c_cc[VTIME] = 0;
#ifdef VDSUSP
    t.c_cc[VDSUSP] = _POSIX_VDISABLE; /* BSD/macOS: Ctrl-Y would break reads */
#endif
    if (tcsetattr(0, TCSADRAIN, &t) < 0)
        return false;
    have_saved = 1;
    if (!atexit_done) {
        atexit(ssm_term_restore);
        atexit_done = true;
    }
    return true;
}

bool ssm_term_size(unsigned *cols, unsigned *rows)
{
    struct winsize ws;
    if (ioctl(1, TIOCGWINSZ, &ws) < 0)
        return false;
    *cols = ws.ws_col;
    *rows = ws.ws_row;
    return true;
}
