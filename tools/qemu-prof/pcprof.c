/* QEMU (7.2, plugin API v1) TCG plugin: instructions executed and bytes
 * loaded per guest instruction address, written at exit as lines
 * "PC_HEX INSNS LOAD_BYTES" to $PCPROF_OUT (default /tmp/pcprof.txt), so a
 * script can sum them per function (tools/insn-prof.sh). The per-PC tally
 * is a hash table filled at translation time; counting uses per-instruction
 * callbacks (single-threaded guests: the counts are plain adds). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdbool.h>
#include <glib.h>
typedef uint64_t qemu_plugin_id_t;
typedef uint32_t qemu_plugin_meminfo_t;
struct qemu_plugin_tb; struct qemu_plugin_insn; typedef struct qemu_info_t qemu_info_t;
enum qemu_plugin_cb_flags { QEMU_PLUGIN_CB_NO_REGS, QEMU_PLUGIN_CB_R_REGS, QEMU_PLUGIN_CB_RW_REGS };
enum qemu_plugin_mem_rw { QEMU_PLUGIN_MEM_R = 1, QEMU_PLUGIN_MEM_W, QEMU_PLUGIN_MEM_RW };
typedef void (*qemu_plugin_vcpu_tb_trans_cb_t)(qemu_plugin_id_t id, struct qemu_plugin_tb *tb);
typedef void (*qemu_plugin_vcpu_udata_cb_t)(unsigned int vcpu_index, void *userdata);
typedef void (*qemu_plugin_udata_cb_t)(qemu_plugin_id_t id, void *userdata);
typedef void (*qemu_plugin_vcpu_mem_cb_t)(unsigned int vcpu_index, qemu_plugin_meminfo_t info, uint64_t vaddr, void *userdata);
extern void qemu_plugin_register_vcpu_tb_trans_cb(qemu_plugin_id_t id, qemu_plugin_vcpu_tb_trans_cb_t cb);
extern size_t qemu_plugin_tb_n_insns(const struct qemu_plugin_tb *tb);
extern struct qemu_plugin_insn *qemu_plugin_tb_get_insn(const struct qemu_plugin_tb *tb, size_t idx);
extern void qemu_plugin_register_vcpu_insn_exec_cb(struct qemu_plugin_insn *insn, qemu_plugin_vcpu_udata_cb_t cb, enum qemu_plugin_cb_flags flags, void *userdata);
extern void qemu_plugin_register_vcpu_mem_cb(struct qemu_plugin_insn *insn, qemu_plugin_vcpu_mem_cb_t cb, enum qemu_plugin_cb_flags flags, enum qemu_plugin_mem_rw rw, void *userdata);
extern unsigned int qemu_plugin_mem_size_shift(qemu_plugin_meminfo_t info);
extern bool qemu_plugin_mem_is_store(qemu_plugin_meminfo_t info);
extern uint64_t qemu_plugin_insn_vaddr(const struct qemu_plugin_insn *insn);
extern void qemu_plugin_register_atexit_cb(qemu_plugin_id_t id, qemu_plugin_udata_cb_t cb, void *userdata);
__attribute__((visibility("default"))) int qemu_plugin_version = 1;
typedef struct { uint64_t pc, n, ld; } Ent;
static GHashTable *tab; static GMutex lock;
static void insn_exec(unsigned int v, void *ud) { ((Ent*)ud)->n++; }
static void mem_cb(unsigned int v, qemu_plugin_meminfo_t info, uint64_t va, void *ud) {
  if (!qemu_plugin_mem_is_store(info)) ((Ent*)ud)->ld += 1ull << qemu_plugin_mem_size_shift(info); }
static void tb_trans(qemu_plugin_id_t id, struct qemu_plugin_tb *tb) {
  size_t n = qemu_plugin_tb_n_insns(tb);
  for (size_t i = 0; i < n; ++i) {
    struct qemu_plugin_insn *insn = qemu_plugin_tb_get_insn(tb, i);
    uint64_t pc = qemu_plugin_insn_vaddr(insn);
    g_mutex_lock(&lock);
    Ent *e = g_hash_table_lookup(tab, &pc);
    if (!e) { e = calloc(1, sizeof *e); e->pc = pc; g_hash_table_insert(tab, &e->pc, e); }
    g_mutex_unlock(&lock);
    qemu_plugin_register_vcpu_insn_exec_cb(insn, insn_exec, QEMU_PLUGIN_CB_NO_REGS, e);
    qemu_plugin_register_vcpu_mem_cb(insn, mem_cb, QEMU_PLUGIN_CB_NO_REGS, QEMU_PLUGIN_MEM_RW, e);
  }
}
static void dump(gpointer k, gpointer v, gpointer f) { Ent *e = v; if (e->n) fprintf(f, "%llx %llu %llu\n", (unsigned long long)e->pc, (unsigned long long)e->n, (unsigned long long)e->ld); }
static void at_exit(qemu_plugin_id_t id, void *ud) {
  const char *p = getenv("PCPROF_OUT"); FILE *f = fopen(p ? p : "/tmp/pcprof.txt", "w");
  g_hash_table_foreach(tab, dump, f); fclose(f); }
__attribute__((visibility("default"))) int qemu_plugin_install(qemu_plugin_id_t id, const qemu_info_t *info, int argc, char **argv) {
  tab = g_hash_table_new(g_int64_hash, g_int64_equal);
  qemu_plugin_register_vcpu_tb_trans_cb(id, tb_trans);
  qemu_plugin_register_atexit_cb(id, at_exit, NULL);
  return 0; }
