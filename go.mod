module github.com/stratacache/strata

go 1.26
