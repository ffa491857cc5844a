/* Replays a libFuzzer corpus through a fuzz target without libFuzzer, so the
 * corpus (and every crash input ever found) runs as an ordinary regression
 * test under ASan+UBSan. Prints TAP: one line per corpus directory (a crash
 * aborts the process, which the test runner counts as a failure). */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int replay_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return -1;
    if (fseek(f, 0, SEEK_END) != 0) {
        fclose(f);
        return -1;
    }
    long n = ftell(f);
    rewind(f);
    uint8_t *data = malloc(n > 0 ? (size_t)n : 1);
    if (data == NULL || (n > 0 && fread(data, 1, (size_t)n, f) != (size_t)n)) {
        free(data);
        fclose(f);
        return -1;
    }
    fclose(f);
    LLVMFuzzerTestOneInput(data, (size_t)n);
    free(data);
    return 0;
}

int main(int argc, char **argv)
{
    int failed = 0;
    for (int i = 1; i < argc; i++) {
        int count = 0;
        int unreadable = 0;
        DIR *d = opendir(argv[i]);
        if (d != NULL) {
            struct dirent *e;
            while ((e = readdir(d)) != NULL) {
                if (e->d_name[0] == '.')
                    continue;
                char path[4096];
                snprintf(path, sizeof(path), "%s/%s", argv[i], e->d_name);
                count++;
                if (replay_file(path) != 0)
                    unreadable++;
            }
            closedir(d);
        }
        /* An empty corpus still proves the target links and survives empty input. */
        LLVMFuzzerTestOneInput((const uint8_t *)"", 0);
        printf("%s %d - %s: %d inputs replayed\n", unreadable ? "not ok" : "ok", i, argv[i], count);
        failed += unreadable != 0;
    }
    printf("1..%d\n", argc - 1);
    return failed ? 1 : 0;
}
