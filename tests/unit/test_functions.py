"""Which function a line is in, from C and C++ sources parsed by tree-sitter's real grammars."""

from harness import FIXTURES

from kiskadee.analysis.functions import FunctionIndex
from kiskadee.core.findings import Finding

C_SOURCE = """\
#include <stdlib.h>

static int counter;

static char *
duplicate (const char *text)
{
  char *copy = malloc (strlen (text) + 1);
  return copy;
}

int (*choose (int which)) (int)
{
  int helper (int x) { return x + which; }
  return which ? helper : 0;
}

#ifdef HAVE_EXTRA
int extra (void) { return 1; }
#endif
"""

CPP_SOURCE = """\
namespace kk {
class Buffer {
 public:
  int size() const {
    return used;
  }
  ~Buffer() {}
  struct Cursor { void next() {} };
 private:
  int used;
};
}

int kk::Buffer::resize(int wanted) {
  auto grow = [&]() { return wanted * 2; };
  return grow();
}

bool Buffer::operator==(const Buffer &other) const { return true; }
template <typename T> T twice(T value) { return value + value; }
"""


def index_of(tmp_path, **files):
    for name, text in files.items():
        path = tmp_path / name.replace("__", "/")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return FunctionIndex(tmp_path)


def test_c_lines_map_to_the_innermost_definition(tmp_path):
    functions = index_of(tmp_path, src__copy_c=C_SOURCE)
    path = "src/copy_c"
    assert functions.function_at(path, 8) == ""     # not a C file name: nothing parsed
    functions = index_of(tmp_path, **{"src__copy.c": C_SOURCE})
    names = {line: functions.function_at("src/copy.c", line) for line in range(1, 21)}
    assert names[3] == "" and names[1] == ""                         # outside every function
    assert names[5] == names[6] == names[8] == names[10] == "duplicate"   # from its return type to its brace
    assert names[12] == names[15] == "choose"                       # a function returning a function pointer
    assert names[14] == "helper"                                    # a GNU C nested function
    assert names[19] == "extra"                                     # inside a preprocessor conditional


def test_cpp_methods_are_qualified_by_their_class(tmp_path):
    functions = index_of(tmp_path, **{"buffer.cpp": CPP_SOURCE})
    assert functions.function_at("buffer.cpp", 5) == "Buffer::size"          # namespaces are not prefixed
    assert functions.function_at("buffer.cpp", 7) == "Buffer::~Buffer"
    assert functions.function_at("buffer.cpp", 8) == "Buffer::Cursor::next"
    assert functions.function_at("buffer.cpp", 15) == "kk::Buffer::resize"   # a lambda belongs to its function
    assert functions.function_at("buffer.cpp", 19) == "Buffer::operator=="
    assert functions.function_at("buffer.cpp", 20) == "twice"
    assert functions.function_at("buffer.cpp", 10) == ""


def test_a_header_is_read_as_cpp_when_only_cpp_parses_it(tmp_path):
    functions = index_of(tmp_path, **{"buffer.h": CPP_SOURCE, "plain.h": "static int one(void)\n{ return 1; }\n"})
    assert functions.function_at("buffer.h", 5) == "Buffer::size"
    assert functions.function_at("plain.h", 2) == "one"


def test_paths_outside_the_tree_and_missing_files_give_no_function(tmp_path):
    tree = tmp_path / "tree"
    tree.mkdir()
    (tmp_path / "secret.c").write_text("int secret(void) { return 42; }\n")
    (tree / "link.c").symlink_to(tmp_path / "secret.c")
    functions = FunctionIndex(tree)
    assert functions.function_at("../secret.c", 1) == ""
    assert functions.function_at("link.c", 1) == ""
    assert functions.function_at(str(tmp_path / "secret.c"), 1) == ""
    assert functions.function_at("missing.c", 1) == ""


def test_broken_code_keeps_the_definitions_tree_sitter_recovers(tmp_path):
    broken = "int fine(void) {\n  return 1;\n}\n\nint broken(void) {\n  return 1 +;\n}\n}}}\n"
    functions = index_of(tmp_path, **{"broken.c": broken})
    assert functions.function_at("broken.c", 2) == "fine"
    assert functions.function_at("broken.c", 8) == ""


def test_each_file_is_parsed_once_per_index(tmp_path):
    functions = index_of(tmp_path, **{"a.c": "int first(void)\n{\n  return 0;\n}\n"})
    assert functions.function_at("a.c", 3) == "first"
    (tmp_path / "a.c").write_text("int second(void)\n{\n  return 0;\n}\n")
    assert functions.function_at("a.c", 3) == "first"              # the run's reading, not re-parsed
    assert FunctionIndex(tmp_path).function_at("a.c", 3) == "second"


def test_fill_keeps_what_the_analyzer_said(tmp_path):
    functions = index_of(tmp_path, **{"src__copy.c": C_SOURCE})
    told = Finding("src/copy.c", 8, "analyzer-malloc-leak", "medium", "leak", function="from_gcc")
    untold = Finding("src/copy.c", 8, "nullPointer", "high", "null")
    nowhere = Finding("", 0, "toomanyconfigs", "info", "too many")
    functions.fill([told, untold, nowhere])
    assert (told.function, untold.function, nowhere.function) == ("from_gcc", "duplicate", "")


def test_a_planted_bug_is_in_its_function():
    functions = FunctionIndex(FIXTURES / "planted")
    assert functions.function_at("src/double_free.c", 13) == "release_twice"
