// Package doccheck holds the test that compiles the Go code of README.md
// and docs/*.md (doccheck_test.go); it has no code of its own.
//
// Every fenced block whose info string starts with go is one of:
//
//   - a program or a file: it starts with a package clause and is
//     compiled as written;
//   - declarations (types, funcs, vars, consts, perhaps with their
//     imports): compiled in a package of their own, with the imports they
//     leave out added (the strata packages, the standard library and the
//     clients the docs use: see knownImports);
//   - a fragment: statements, or code with "..." standing for what is left
//     out. A fragment must be marked, with the info string "go fragment";
//     an unmarked one is compiled as the body of a function and reported,
//     with its file and line, when it does not compile.
//
// New documents under docs/ are covered without a change here.
package doccheck
