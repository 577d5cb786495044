package configs

import (
	"embed"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strings"
	"sync"

	"github.com/BurntSushi/toml"

	"github.com/provbox/provbox/appliance"
)

// The model catalog (SPEC §3): one TOML file per vendor under catalog/,
// each model an entry whose facts name their source. For example:
//
//	[[model]]
//	name = "T46U"
//	device_id = "108"
//	line_keys = 27
//	...
//	[model.sources]
//	line_keys = "Wazo wazo_yealink/v87/common.py _NB_LINEKEY"
//
//go:embed catalog/*.toml
var catalogFiles embed.FS

// catalogFile is one vendor's file.
type catalogFile struct {
	Vendor appliance.Vendor            `toml:"vendor"`
	Module []appliance.ExpansionModule `toml:"module"`
	Model  []appliance.Model           `toml:"model"`
}

// LoadCatalog reads every *.toml file of fsys's catalog/ folder and
// validates the whole (appliance.NewCatalog). Unknown keys are errors, so
// a misspelt fact is not silently dropped.
func LoadCatalog(fsys fs.FS) (*appliance.Catalog, error) {
	names, err := fs.Glob(fsys, "catalog/*.toml")
	if err != nil {
		return nil, err
	}
	sort.Strings(names)
	var (
		vendors []appliance.Vendor
		models  []appliance.Model
		modules []appliance.ExpansionModule
	)
	for _, name := range names {
		b, err := fs.ReadFile(fsys, name)
		if err != nil {
			return nil, err
		}
		var f catalogFile
		md, err := toml.Decode(string(b), &f)
		if err != nil {
			return nil, fmt.Errorf("catalog %s: %w", path.Base(name), err)
		}
		if und := md.Undecoded(); len(und) > 0 {
			var keys []string
			for _, k := range und {
				keys = append(keys, k.String())
			}
			return nil, fmt.Errorf("catalog %s: unknown keys %s", path.Base(name), strings.Join(keys, ", "))
		}
		vendors = append(vendors, f.Vendor)
		modules = append(modules, f.Module...)
		for _, m := range f.Model {
			m.Manufacturer = f.Vendor.Name
			models = append(models, m)
		}
	}
	return appliance.NewCatalog(vendors, models, modules)
}

// Catalog returns the catalog embedded in the binary, loaded once (it is
// immutable). provbox checks it at start; a test checks it on every build.
func Catalog() (*appliance.Catalog, error) { return embeddedCatalog() }

var embeddedCatalog = sync.OnceValues(func() (*appliance.Catalog, error) { return LoadCatalog(catalogFiles) })

// MustCatalog is Catalog for tests and tools: it panics on a broken
// embedded catalog (which the package's own tests refuse).
func MustCatalog() *appliance.Catalog {
	c, err := Catalog()
	if err != nil {
		panic(err)
	}
	return c
}
