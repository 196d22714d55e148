package builder_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/medgr2/medgr2/data"
	"github.com/medgr2/medgr2/data/builder"
)

func Example() {
	out, _ := os.MkdirTemp("", "bench")
	defer os.RemoveAll(out)
	root := "../../../shared/data"
	m, err := builder.Build(context.Background(), builder.Config{
		Collections:      []string{filepath.Join(root, "busi")},
		Reference:        filepath.Join(root, "omnimedvqa-text", "omnimedvqa_text_sample.json"),
		OutDir:           out,
		ImageSize:        28,
		Seed:             1,
		MaxPerCollection: 10,
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	test, _ := data.Load(filepath.Join(out, builder.SplitFile(data.SplitTest)))
	fmt.Println(m.Collections[0].Name, m.Collections[0].Images, "images,", len(test) > 0)
	// Output: BUSI 10 images, true
}
