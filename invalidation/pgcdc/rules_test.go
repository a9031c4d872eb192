package pgcdc

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/jackc/pglogrepl"
)

func TestCompileRulesRejectsBadRules(t *testing.T) {
	ok := Rule{Table: "profiles", Keys: []string{"profile:{id}"}}
	for _, tc := range []struct {
		name  string
		rules []Rule
		field string
		why   string
	}{
		{"none", nil, "rules", "at least one rule"},
		{"empty table", []Rule{{Keys: []string{"k"}}}, "Table", "want"},
		{"three-part table", []Rule{{Table: "a.b.c", Keys: []string{"k"}}}, "Table", "want"},
		{"empty schema", []Rule{{Table: ".b", Keys: []string{"k"}}}, "Table", "want"},
		{"duplicate", []Rule{ok, {Table: "public.profiles", Tags: []string{"t"}}}, "Table", "two rules"},
		{"no templates", []Rule{{Table: "t"}}, "Keys", "at least one key or tag"},
		{"bad action", []Rule{{Table: "t", Keys: []string{"k"}, Action: 7}}, "Action", "Remove or Expire"},
		{"empty key", []Rule{{Table: "t", Keys: []string{""}}}, "Keys[0]", "empty"},
		{"unclosed", []Rule{{Table: "t", Keys: []string{"k", "p:{id"}}}, "Keys[1]", "without its '}'"},
		{"unopened", []Rule{{Table: "t", Tags: []string{"p:id}"}}}, "Tags[0]", "without its '{'"},
		{"empty placeholder", []Rule{{Table: "t", Keys: []string{"p:{}"}}}, "Keys[0]", "empty placeholder"},
		{"nested", []Rule{{Table: "t", Keys: []string{"p:{{id}}"}}}, "Keys[0]", "inside a placeholder"},
		{"truncate tag placeholder", []Rule{{Table: "t", Keys: []string{"k"}, TruncateTag: "t:{id}"}}, "TruncateTag", "no placeholders"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := compileRules(tc.rules)
			var re *RuleError
			if !errors.As(err, &re) || re.Field != tc.field || !strings.Contains(re.Why, tc.why) {
				t.Fatalf("compileRules = %v; want a *RuleError on %s saying %q", err, tc.field, tc.why)
			}
		})
	}
	if _, err := New("postgres://x@127.0.0.1/db", []Rule{{Table: "t"}}, nil); err == nil {
		t.Error("New accepted a rule without templates")
	}
	if _, err := New("postgres://x@127.0.0.1/db", []Rule{ok}, &Options{Slot: "Bad-Slot"}); err == nil || !strings.Contains(err.Error(), "Bad-Slot") {
		t.Errorf("New with a bad slot name: %v", err)
	}
}

// rel describes public.profiles (id, tenant_id, name) with the given
// replica identity; id is the key.
func rel(identity byte) *pglogrepl.RelationMessage {
	return &pglogrepl.RelationMessage{RelationID: 1, Namespace: "public", RelationName: "profiles", ReplicaIdentity: identity,
		Columns: []*pglogrepl.RelationMessageColumn{{Name: "id", Flags: 1}, {Name: "tenant_id"}, {Name: "name"}}}
}

// tuple makes a row: "NULL" is a null, "TOAST" an unchanged TOASTed value.
func tuple(vals ...string) *pglogrepl.TupleData {
	td := &pglogrepl.TupleData{ColumnNum: uint16(len(vals))}
	for _, v := range vals {
		c := &pglogrepl.TupleDataColumn{DataType: pglogrepl.TupleDataTypeText, Data: []byte(v)}
		switch v {
		case "NULL":
			c = &pglogrepl.TupleDataColumn{DataType: pglogrepl.TupleDataTypeNull}
		case "TOAST":
			c = &pglogrepl.TupleDataColumn{DataType: pglogrepl.TupleDataTypeToast}
		}
		td.Columns = append(td.Columns, c)
	}
	return td
}

func TestBindChecksColumnsAndReplicaIdentity(t *testing.T) {
	for _, tc := range []struct {
		name     string
		rule     Rule
		identity byte
		why      string // "" for no error
	}{
		{"key column, default identity", Rule{Table: "profiles", Keys: []string{"profile:{id}"}}, 'd', ""},
		{"non-key column, full identity", Rule{Table: "profiles", Tags: []string{"tenant:{tenant_id}"}}, 'f', ""},
		{"non-key column, default identity", Rule{Table: "profiles", Keys: []string{"p:{id}"}, Tags: []string{"tenant:{tenant_id}"}}, 'd', "REPLICA IDENTITY FULL"},
		{"non-key column, index identity", Rule{Table: "profiles", Tags: []string{"tenant:{tenant_id}"}}, 'i', "REPLICA IDENTITY FULL"},
		{"identity nothing", Rule{Table: "profiles", Keys: []string{"p:{id}"}}, 'n', "NOTHING"},
		{"unknown column", Rule{Table: "profiles", Keys: []string{"p:{ID}"}}, 'f', "no such column (its columns: id, tenant_id, name)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rules, err := compileRules([]Rule{tc.rule})
			if err != nil {
				t.Fatal(err)
			}
			_, err = bindRelation(rules["public.profiles"], rel(tc.identity))
			var re *RuleError
			switch {
			case tc.why == "" && err != nil:
				t.Fatalf("bind: %v", err)
			case tc.why != "" && (!errors.As(err, &re) || !strings.Contains(err.Error(), tc.why)):
				t.Fatalf("bind = %v; want a *RuleError saying %q", err, tc.why)
			}
		})
	}
}

func TestRowsMapToKeysAndTags(t *testing.T) {
	rules, err := compileRules([]Rule{{Table: "public.profiles", Keys: []string{"profile:{id}", "name:{name}"},
		Tags: []string{"tenant:{tenant_id}"}, TruncateTag: "table:profiles"}})
	if err != nil {
		t.Fatal(err)
	}
	b, err := bindRelation(rules["public.profiles"], rel('f'))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name          string
		old, new      *pglogrepl.TupleData
		keys, tags    []string
		resolved      bool
		wantTruncated bool
	}{
		{"insert", nil, tuple("42", "7", "ada"), []string{"name:ada", "profile:42"}, []string{"tenant:7"}, true, false},
		{"update moves tenant: both tags", tuple("42", "7", "ada"), tuple("42", "8", "ada"),
			[]string{"name:ada", "profile:42"}, []string{"tenant:7", "tenant:8"}, true, false},
		{"update renames: both names", tuple("42", "7", "ada"), tuple("42", "7", "grace"),
			[]string{"name:ada", "name:grace", "profile:42"}, []string{"tenant:7"}, true, false},
		{"delete", tuple("42", "7", "ada"), nil, []string{"name:ada", "profile:42"}, []string{"tenant:7"}, true, false},
		{"null tenant makes no tag", nil, tuple("42", "NULL", "ada"), []string{"name:ada", "profile:42"}, nil, true, false},
		{"unchanged TOAST taken from the old row", tuple("42", "7", "ada"), tuple("42", "7", "TOAST"),
			[]string{"name:ada", "profile:42"}, []string{"tenant:7"}, true, false},
		{"unchanged TOAST without an old row falls back", nil, tuple("42", "7", "TOAST"),
			[]string{"profile:42"}, []string{"table:profiles", "tenant:7"}, false, true},
		{"short row falls back", nil, tuple("42"), []string{"profile:42"}, []string{"table:profiles"}, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tx := newBatch(100)
			resolved := true
			if tc.old != nil {
				resolved = b.addRow(tx, tc.old, nil) && resolved
			}
			if tc.new != nil {
				resolved = b.addRow(tx, tc.new, tc.old) && resolved
			}
			if got := sortedKeys(tx.keys); !slices.Equal(got, tc.keys) {
				t.Errorf("keys %q, want %q", got, tc.keys)
			}
			if got := sortedKeys(tx.tags); !slices.Equal(got, tc.tags) {
				t.Errorf("tags %q, want %q", got, tc.tags)
			}
			if resolved != tc.resolved || tx.clear {
				t.Errorf("resolved %v, clear %v; want %v, false", resolved, tx.clear, tc.resolved)
			}
		})
	}
}

func TestTruncateAndFallbackWithoutTagClear(t *testing.T) {
	rules, _ := compileRules([]Rule{{Table: "profiles", Keys: []string{"profile:{id}"}, Action: Expire}})
	b, err := bindRelation(rules["public.profiles"], rel('d'))
	if err != nil {
		t.Fatal(err)
	}
	tx := newBatch(100)
	b.addTruncate(tx)
	if !tx.clear || tx.clearAct != Expire || len(tx.keys) != 0 {
		t.Fatalf("TRUNCATE without TruncateTag: clear %v (%v), keys %v; want an expiring Clear", tx.clear, tx.clearAct, tx.keys)
	}
}

func TestBatchRemoveWinsAndOverflowClears(t *testing.T) {
	tx := newBatch(3)
	tx.addKey("a", Expire)
	tx.addKey("a", Remove)
	tx.addKey("a", Expire)
	if tx.keys["a"] != Remove {
		t.Fatalf("key a: %v, want remove (Remove wins over Expire)", tx.keys["a"])
	}
	tx.addTag("t", Expire)
	tx.addKey("b", Expire)
	if tx.clear {
		t.Fatal("cleared at 3 entries, the maximum")
	}
	tx.addKey("c", Expire)
	if !tx.clear || tx.clearAct != Remove || len(tx.keys)+len(tx.tags) != 0 {
		t.Fatalf("over the maximum: clear %v (%v), %d keys, %d tags; want a removing Clear and nothing else",
			tx.clear, tx.clearAct, len(tx.keys), len(tx.tags))
	}
	tx.addKey(fmt.Sprint("d"), Expire)
	if len(slices.Collect(maps.Keys(tx.keys))) != 0 {
		t.Fatal("a cleared batch kept a key")
	}
}

// TestParseNeverPanics feeds the decoder truncated and garbage messages:
// each is an error, never a panic.
func TestParseNeverPanics(t *testing.T) {
	for _, data := range [][]byte{nil, {'R'}, {'R', 0, 0}, {'U', 0, 0, 0, 1, 'N'}, {'I', 0, 0, 0, 1, 'N', 0, 5}, {'T', 0, 0, 0, 9, 0}, {'Z'}} {
		if _, err := parse(data); err == nil && len(data) > 0 && data[0] != 'Z' {
			t.Errorf("parse(%q): no error", data)
		}
	}
}
