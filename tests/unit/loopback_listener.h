/* A listening TCP socket on 127.0.0.1 with a kernel-chosen port, for the
 * unit tests' small in-process servers. accept() gives up every 100 ms so a
 * server thread can notice it should stop. */
#ifndef SSM_TEST_LOOPBACK_LISTENER_H
#define SSM_TEST_LOOPBACK_LISTENER_H

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>

/* The listening descriptor (port in *port), or -1. */
static inline int loopback_listener(int *port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof a;
    if (bind(fd, (struct sockaddr *)&a, sizeof a) != 0 ||
        getsockname(fd, (struct sockaddr *)&a, &al) != 0 || listen(fd, 16) != 0)
        return -1;
    *port = ntohs(a.sin_port);
    struct timeval tv = {.tv_sec = 0, .tv_usec = 100000};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    return fd;
}

#endif
