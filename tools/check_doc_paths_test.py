#!/usr/bin/env python3
"""Tests of tools/check-doc-paths.py on small scratch trees (ctest docs.paths_selftest).

Each case writes a tree, runs the checker on it with --root and checks the
exit status and the citations it reports missing.
"""

import os
import subprocess
import sys
import tempfile
import unittest

CHECKER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "check-doc-paths.py")


def run(files):
    """Writes files {path: text} into a scratch root; returns (status, stderr)."""
    with tempfile.TemporaryDirectory() as root:
        for path, text in files.items():
            full = os.path.join(root, path)
            os.makedirs(os.path.dirname(full), exist_ok=True)
            with open(full, "w", encoding="utf-8") as f:
                f.write(text)
        p = subprocess.run([sys.executable, CHECKER, "--root", root], capture_output=True,
                           text=True, check=False)
        return p.returncode, p.stderr


BASE = {
    "engine/forward.cpp": "int f();\n",
    "engine/shift_test.cpp": "",
    "engine/session.h": "",
    "engine/session.cpp": "",
    "kernels/ref/quant_acts_ref.cpp": "",
    "kernels/neon/matmul_q4g_gemv_dotprod.cpp": "",
    "tests/cmake/engine.cmake": "",
    "tools/run/main.cpp": "",
    "tools/convert/json_schema.h": "",
    "kernels/neon/matmul_q4g_f16s_gemv_dotprod.cpp": "",
}


class CheckDocPathsTest(unittest.TestCase):
    def test_valid_citations_pass(self):
        rc, err = run(dict(BASE, **{
            "README.md": "See `engine/forward.cpp`, engine/session.{h,cpp}, tools/run/ and\n"
                         "[the spec](kernels/ref/quant_acts_ref.cpp#L3), quant_acts_ref.cpp,\n"
                         "ref/quant_acts_ref.cpp:12, `<dir>/*_test.cpp`, kernels/**/*.cpp,\n"
                         "tests/cmake/<component>.cmake, kernels/neon/*_<isa>.cpp, llama.cpp,\n"
                         "llama2.c, https://example.com/x/missing.cpp, ../shared/y/none.cpp,\n"
                         "~/models/x.cpp and build/host/gen.h.\n",
            "docs/A.md": "The doc beside [README.md](../README.md) and tools/run/main.cpp\n"
                         "(in tools/run/), | `kernels/neon/<op>_<gemv\\|gemm>_<isa>.cpp` |\n"
                         "matmul_q4g_(f16s_)gemv_dotprod.cpp, (tools/convert/json_schema)\n",
            "engine/forward.cpp": '// Implements engine/session.h (see "session.cpp").\n'
                                  'const char* s = "engine/not_there.cpp // nor.cpp";\n'
                                  "/* block: kernels/ref/quant_acts_ref.cpp */\n",
            "tools/x.py": '# uses tools/run/main.cpp\ns = "tools/none.py"  # ok\n',
        }))
        self.assertEqual(rc, 0, err)

    def test_missing_doc_path_fails(self):
        rc, err = run(dict(BASE, **{"docs/A.md": "line 1\nsee engine/gone.cpp here\n"}))
        self.assertEqual(rc, 1)
        self.assertIn("docs/A.md:2: 'engine/gone.cpp'", err)

    def test_missing_readme_file_name_fails(self):
        rc, err = run(dict(BASE, **{"README.md": "the formula is in quant_ref.cpp.\n"}))
        self.assertEqual(rc, 1)
        self.assertIn("README.md:1: 'quant_ref.cpp'", err)

    def test_missing_path_in_c_comment_fails(self):
        rc, err = run(dict(BASE, **{
            "kernels/k.h": "int a;\n/// See kernels/ref/matmul_f32_ref.cpp.\nint b;\n"}))
        self.assertEqual(rc, 1)
        self.assertIn("kernels/k.h:2: 'kernels/ref/matmul_f32_ref.cpp'", err)

    def test_missing_path_in_block_comment_and_cmake_fails(self):
        rc, err = run(dict(BASE, **{
            "engine/e.cpp": "/* one\n   two: engine/old.h */\n",
            "tests/cmake/x.cmake": "set(a 1)  # registered in tests/cmake/old.cmake\n"}))
        self.assertEqual(rc, 1)
        self.assertIn("engine/e.cpp:2: 'engine/old.h'", err)
        self.assertIn("tests/cmake/x.cmake:1: 'tests/cmake/old.cmake'", err)

    def test_brace_alternative_must_all_exist(self):
        rc, err = run(dict(BASE, **{"README.md": "engine/session.{h,cpp,inl}\n"}))
        self.assertEqual(rc, 1)
        self.assertIn("engine/session.{h,cpp,inl}", err)

    def test_optional_part_must_exist_both_ways(self):
        rc, err = run(dict(BASE, **{"README.md": "(see engine/(old_)session.h)\n"}))
        self.assertEqual(rc, 1)
        self.assertIn("'engine/(old_)session.h'", err)

    def test_stem_needs_a_file(self):
        rc, err = run(dict(BASE, **{"README.md": "tools/convert/json_schem\n"}))
        self.assertEqual(rc, 1)
        self.assertIn("'tools/convert/json_schem'", err)

    def test_glob_or_placeholder_matching_nothing_fails(self):
        rc, err = run(dict(BASE, **{"README.md": "kernels/sve/*_<isa>.cpp and *_avx9.cpp\n"}))
        self.assertEqual(rc, 1)
        self.assertIn("'kernels/sve/*_<isa>.cpp'", err)
        self.assertIn("'*_avx9.cpp'", err)

    def test_directory_must_exist(self):
        rc, err = run(dict(BASE, **{"README.md": "the tools/hub/ directory\n"}))
        self.assertEqual(rc, 1)
        self.assertIn("'tools/hub/'", err)

    def test_tree_without_citations_fails(self):
        rc, err = run({"README.md": "no paths here\n"})
        self.assertEqual(rc, 1)
        self.assertIn("no cited path found", err)

    def test_bad_root_is_usage_error(self):
        p = subprocess.run([sys.executable, CHECKER, "--root", "/nonexistent/dir"],
                           capture_output=True, text=True, check=False)
        self.assertEqual(p.returncode, 2)


if __name__ == "__main__":
    unittest.main()
