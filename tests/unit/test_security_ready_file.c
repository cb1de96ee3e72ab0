/* The ready file (SSM_PLUGIN_READY_FILE, plugin/port_listen_ready.c) must not
 * follow links another local user planted: neither at the temp name written
 * first (once path.tmp.<pid>, predictable) nor at the ready path itself. Each
 * case runs in a child: the ready signal is published once per process. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <dirent.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "port_listen.h"

#define LINE "{\"port\":1234,\"address\":\"127.0.0.1\",\"session_id\":\"s-1\"}"
#define VICTIM_TEXT "precious\n"

static char dir[64], ready[128], victim[128], planted[256];

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/ssm-ready-XXXXXX");
    if (!mkdtemp(dir))
        return -1;
    snprintf(ready, sizeof ready, "%s/ready.json", dir);
    snprintf(victim, sizeof victim, "%s/victim", dir);
    FILE *f = fopen(victim, "w");
    if (!f)
        return -1;
    fputs(VICTIM_TEXT, f);
    fclose(f);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    DIR *d = opendir(dir);
    struct dirent *e;
    char p[512];
    while (d && (e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
            snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
            unlink(p);
        }
    if (d)
        closedir(d);
    rmdir(dir);
    return 0;
}

static void read_file(const char *path, char *buf, size_t cap)
{
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    size_t n = fread(buf, 1, cap - 1, f);
    buf[n] = '\0';
    fclose(f);
}

/* Publishes in a child whose pid the caller knows beforehand (the child
 * waits for the go-ahead on a pipe), so links can be planted for it. */
static void publish_in_child(void (*plant)(pid_t))
{
    int go[2];
    assert_int_equal(pipe(go), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        char c;
        close(go[1]);
        if (read(go[0], &c, 1) != 1)
            _exit(3);
        setenv("SSM_PLUGIN_READY_FILE", ready, 1);
        unsetenv("SSM_PLUGIN_READY_FD");
        port_ready_expect(1);
        _exit(port_ready_publish("s-1", LINE) == 0 ? 0 : 2);
    }
    close(go[0]);
    plant(pid);
    assert_int_equal(write(go[1], "g", 1), 1);
    close(go[1]);
    int st = 0;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);
}

static void expect_published_beside_untouched_victim(void)
{
    char buf[512];
    read_file(victim, buf, sizeof buf);
    assert_string_equal(buf, VICTIM_TEXT);
    struct stat st;
    assert_int_equal(lstat(ready, &st), 0);
    assert_true(S_ISREG(st.st_mode));
    assert_int_equal(st.st_mode & 07777, 0600);
    read_file(ready, buf, sizeof buf);
    assert_string_equal(buf, LINE "\n");
    /* no temp file left behind */
    DIR *d = opendir(dir);
    struct dirent *e;
    char p[512];
    while (d && (e = readdir(d))) {
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        if (strcmp(p, planted))
            assert_null(strstr(e->d_name, ".tmp."));
    }
    closedir(d);
}

static void plant_at_old_temp_name(pid_t pid)
{
    snprintf(planted, sizeof planted, "%s.tmp.%ld", ready, (long)pid);
    assert_int_equal(symlink(victim, planted), 0);
}

static void test_link_at_temp_name_not_followed(void **state)
{
    (void)state;
    publish_in_child(plant_at_old_temp_name);
    expect_published_beside_untouched_victim();
}

static void plant_at_ready_path(pid_t pid)
{
    (void)pid;
    planted[0] = '\0';
    assert_int_equal(symlink(victim, ready), 0);
}

static void test_link_at_ready_path_replaced_not_followed(void **state)
{
    (void)state;
    publish_in_child(plant_at_ready_path);
    expect_published_beside_untouched_victim();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_link_at_temp_name_not_followed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_link_at_ready_path_replaced_not_followed, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
