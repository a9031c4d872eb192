package pgcdc

import (
	"fmt"
	"slices"
	"strings"

	"github.com/jackc/pglogrepl"
)

// Action is what a rule does to the entries a change maps to.
type Action uint8

const (
	// Remove removes the entries (core.Cache.Remove, RemoveByTag, Clear
	// without fail-safe): the next read goes to the database, and
	// fail-safe cannot serve the old value. The default.
	Remove Action = iota
	// Expire expires them (core.Cache.Expire, ExpireByTag, Clear with
	// fail-safe): the next read goes to the database, but fail-safe may
	// still serve the old value if the database fails.
	Expire
)

func (a Action) String() string {
	switch a {
	case Remove:
		return "remove"
	case Expire:
		return "expire"
	}
	return fmt.Sprintf("Action(%d)", uint8(a))
}

// Rule maps the rows of one table to cache keys and tags. Each key and tag
// is a template in which {column} stands for the row's value of that column,
// in PostgreSQL's text form: with Keys "profile:{id}" and Tags
// "tenant:{tenant_id}", a change of the row (id 42, tenant_id 7) invalidates
// the key "profile:42" and the tag "tenant:7".
//
// An INSERT invalidates what the new row maps to (a cached "not found"); an
// UPDATE what the old row and the new row map to (a row that moved from
// tenant 7 to tenant 8 invalidates both tags); a DELETE what the old row
// maps to. The old row carries only the columns of the table's REPLICA
// IDENTITY (the primary key by default): every column a rule names must be
// part of it, or the table must have REPLICA IDENTITY FULL. A column whose
// value is NULL makes no key or tag from the templates that name it.
type Rule struct {
	// Table is the table, as "schema.table" or "table" (schema public),
	// spelled as PostgreSQL stores the names (unquoted, case-sensitive:
	// usually lower case).
	Table string
	// Keys are key templates, Tags tag templates. A rule needs at least one
	// of them.
	Keys, Tags []string
	// Action is Remove (the default) or Expire.
	Action Action
	// TruncateTag is the tag invalidated (by Action) when the table is
	// truncated: a tag the application puts on every entry it caches from
	// the table, such as "table:profiles". Empty: a TRUNCATE clears the
	// whole cache. It is also what a row change falls back to when a value
	// its templates need is not in the change (an unchanged TOASTed column).
	// It takes no placeholders.
	TruncateTag string
}

// RuleError reports a rule that cannot be used: a bad template, or one that
// does not fit the table it names.
type RuleError struct {
	Table string // as the rule spells it
	Field string // "Keys[0]", "Tags[1]", "Table", ...
	Value string
	Why   string
}

func (e *RuleError) Error() string {
	return fmt.Sprintf("pgcdc: rule for table %q: %s %q: %s", e.Table, e.Field, e.Value, e.Why)
}

// segment is a piece of a template: literal text, or a column's value.
type segment struct {
	text   string
	column bool // text is a column name
}

type template struct {
	src  string
	segs []segment
}

func parseTemplate(table, field, s string) (template, error) {
	t := template{src: s}
	bad := func(why string) (template, error) {
		return template{}, &RuleError{Table: table, Field: field, Value: s, Why: why}
	}
	if s == "" {
		return bad("must not be empty")
	}
	rest := s
	for rest != "" {
		open := strings.IndexByte(rest, '{')
		if cl := strings.IndexByte(rest, '}'); cl >= 0 && (open < 0 || cl < open) {
			return bad("has a '}' without its '{'")
		}
		if open < 0 {
			t.segs = append(t.segs, segment{text: rest})
			break
		}
		if open > 0 {
			t.segs = append(t.segs, segment{text: rest[:open]})
		}
		cl := strings.IndexByte(rest[open:], '}')
		if cl < 0 {
			return bad("has a '{' without its '}'")
		}
		name := rest[open+1 : open+cl]
		switch {
		case name == "":
			return bad("has an empty placeholder {}")
		case strings.ContainsRune(name, '{'):
			return bad("has a '{' inside a placeholder")
		}
		t.segs = append(t.segs, segment{text: name, column: true})
		rest = rest[open+cl+1:]
	}
	return t, nil
}

func (t template) columns() []string {
	var cols []string
	for _, s := range t.segs {
		if s.column && !slices.Contains(cols, s.text) {
			cols = append(cols, s.text)
		}
	}
	return cols
}

// compiledRule is a Rule checked and parsed.
type compiledRule struct {
	Rule
	schema, name string
	keys, tags   []template
	columns      []string // every column the templates name
}

func (r *compiledRule) qualified() string { return r.schema + "." + r.name }

// compileRules checks rules and indexes them by "schema.table".
func compileRules(rules []Rule) (map[string]*compiledRule, error) {
	if len(rules) == 0 {
		return nil, &RuleError{Field: "rules", Why: "at least one rule is needed"}
	}
	out := make(map[string]*compiledRule, len(rules))
	for _, r := range rules {
		c := &compiledRule{Rule: r}
		bad := func(field, value, why string) error {
			return &RuleError{Table: r.Table, Field: field, Value: value, Why: why}
		}
		parts := strings.Split(r.Table, ".")
		switch {
		case len(parts) == 1 && parts[0] != "":
			c.schema, c.name = "public", parts[0]
		case len(parts) == 2 && parts[0] != "" && parts[1] != "":
			c.schema, c.name = parts[0], parts[1]
		default:
			return nil, bad("Table", r.Table, `want "table" or "schema.table"`)
		}
		if _, dup := out[c.qualified()]; dup {
			return nil, bad("Table", r.Table, "has two rules; merge them into one")
		}
		if r.Action != Remove && r.Action != Expire {
			return nil, bad("Action", r.Action.String(), "want Remove or Expire")
		}
		if len(r.Keys) == 0 && len(r.Tags) == 0 {
			return nil, bad("Keys", "", "a rule needs at least one key or tag template")
		}
		for i, s := range r.Keys {
			t, err := parseTemplate(r.Table, fmt.Sprintf("Keys[%d]", i), s)
			if err != nil {
				return nil, err
			}
			c.keys = append(c.keys, t)
		}
		for i, s := range r.Tags {
			t, err := parseTemplate(r.Table, fmt.Sprintf("Tags[%d]", i), s)
			if err != nil {
				return nil, err
			}
			c.tags = append(c.tags, t)
		}
		if strings.ContainsAny(r.TruncateTag, "{}") {
			return nil, bad("TruncateTag", r.TruncateTag, "takes no placeholders (a TRUNCATE has no rows)")
		}
		for _, t := range slices.Concat(c.keys, c.tags) {
			for _, col := range t.columns() {
				if !slices.Contains(c.columns, col) {
					c.columns = append(c.columns, col)
				}
			}
		}
		out[c.qualified()] = c
	}
	return out, nil
}

// column is what a rule needs to know of one of its table's columns.
type column struct {
	name string
	key  bool // part of the replica identity
}

// boundRule is a rule bound to a relation as the stream describes it: the
// templates' columns resolved to positions in the row.
type boundRule struct {
	*compiledRule
	index map[string]int // column name -> position
}

// bind checks r against the table's columns and replica identity (as a
// Relation message, or the catalog, gives them) and resolves its columns.
// identity is pglogrepl's byte: 'd' default (primary key), 'i' index,
// 'f' full, 'n' nothing.
func bind(r *compiledRule, identity byte, cols []column) (*boundRule, error) {
	b := &boundRule{compiledRule: r, index: make(map[string]int, len(cols))}
	names := make([]string, len(cols))
	var keyCols []string
	for i, c := range cols {
		b.index[c.name] = i
		names[i] = c.name
		if c.key {
			keyCols = append(keyCols, c.name)
		}
	}
	for _, t := range slices.Concat(r.keys, r.tags) {
		for _, col := range t.columns() {
			if _, ok := b.index[col]; !ok {
				return nil, &RuleError{Table: r.Table, Field: "placeholder", Value: "{" + col + "}",
					Why: fmt.Sprintf("%s has no such column (its columns: %s)", r.qualified(), strings.Join(names, ", "))}
			}
		}
	}
	switch identity {
	case 'f':
		return b, nil
	case 'd', 'i':
		for _, col := range r.columns {
			if !slices.Contains(keyCols, col) {
				return nil, &RuleError{Table: r.Table, Field: "placeholder", Value: "{" + col + "}",
					Why: fmt.Sprintf("the old row of an UPDATE or DELETE carries only the replica identity's columns (%s), not %s: "+
						"run ALTER TABLE %s REPLICA IDENTITY FULL, or use only those columns",
						orNone(keyCols), col, quoteQualified(r.schema, r.name))}
			}
		}
		return b, nil
	case 'n':
		return nil, &RuleError{Table: r.Table, Field: "Table", Value: r.Table,
			Why: fmt.Sprintf("has REPLICA IDENTITY NOTHING: UPDATE and DELETE carry no old row; run ALTER TABLE %s REPLICA IDENTITY FULL (or give it a primary key)",
				quoteQualified(r.schema, r.name))}
	}
	return nil, &RuleError{Table: r.Table, Field: "Table", Value: r.Table, Why: fmt.Sprintf("unknown replica identity %q", identity)}
}

func orNone(cols []string) string {
	if len(cols) == 0 {
		return "none"
	}
	return strings.Join(cols, ", ")
}

// bindRelation binds r to a Relation message.
func bindRelation(r *compiledRule, rel *pglogrepl.RelationMessage) (*boundRule, error) {
	cols := make([]column, len(rel.Columns))
	for i, c := range rel.Columns {
		cols[i] = column{name: c.Name, key: c.Flags&1 != 0}
	}
	return bind(r, rel.ReplicaIdentity, cols)
}

// render fills t from row; fallback (the old row of an UPDATE) gives the
// values row marks as unchanged TOAST. ok is false when a value is missing
// from both, null is true when one is NULL (then there is nothing to
// invalidate for t).
func (b *boundRule) render(t template, row, fallback *pglogrepl.TupleData) (s string, null, ok bool) {
	var sb strings.Builder
	for _, seg := range t.segs {
		if !seg.column {
			sb.WriteString(seg.text)
			continue
		}
		v, state := value(row, b.index[seg.text])
		if state == missing && fallback != nil {
			v, state = value(fallback, b.index[seg.text])
		}
		switch state {
		case isNull:
			return "", true, true
		case missing:
			return "", false, false
		}
		sb.Write(v)
	}
	return sb.String(), false, true
}

type valueState uint8

const (
	present valueState = iota
	isNull
	missing
)

func value(row *pglogrepl.TupleData, i int) ([]byte, valueState) {
	if row == nil || i >= len(row.Columns) || row.Columns[i] == nil {
		return nil, missing
	}
	c := row.Columns[i]
	switch c.DataType {
	case pglogrepl.TupleDataTypeText:
		return c.Data, present
	case pglogrepl.TupleDataTypeNull:
		return nil, isNull
	}
	return nil, missing // 'u' (unchanged TOAST), or binary, which is never asked for
}

// addRow adds to tx what row maps to under b. It reports false when a value
// was missing, after adding b's fallback (its TruncateTag, or a Clear).
func (b *boundRule) addRow(tx *batch, row, fallback *pglogrepl.TupleData) bool {
	ok := true
	for _, t := range b.keys {
		if s, null, found := b.render(t, row, fallback); !found {
			ok = false
		} else if !null {
			tx.addKey(s, b.Action)
		}
	}
	for _, t := range b.tags {
		if s, null, found := b.render(t, row, fallback); !found {
			ok = false
		} else if !null {
			tx.addTag(s, b.Action)
		}
	}
	if !ok {
		b.addTruncate(tx)
	}
	return ok
}

// addTruncate adds to tx what a TRUNCATE of b's table does.
func (b *boundRule) addTruncate(tx *batch) {
	if b.TruncateTag != "" {
		tx.addTag(b.TruncateTag, b.Action)
	} else {
		tx.addClear(b.Action)
	}
}

// quoteQualified quotes schema.name for SQL.
func quoteQualified(schema, name string) string {
	return quoteIdent(schema) + "." + quoteIdent(name)
}

func quoteIdent(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }
