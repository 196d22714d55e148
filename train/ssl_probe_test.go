package train

import (
	"context"
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/medgr2/medgr2/data"
)

func TestSSLImagesKeepsTrainSplitOfKeptModalities(t *testing.T) {
	dirs := []string{filepath.Join(sharedData, "pneumoniamnist"), filepath.Join(sharedData, "kermany-oct")}
	got, err := SSLImages(dirs, []string{"X-Ray"})
	if err != nil {
		t.Fatal(err)
	}
	oct, err := data.LoadCollection(dirs[1])
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, img := range oct.Images {
		if img.Split == data.SplitTrain {
			want = append(want, oct.ImageFile(img))
		}
	}
	if !slices.Equal(got, want) {
		t.Errorf("got %d images, want the %d train images of kermany-oct", len(got), len(want))
	}
	for _, p := range got {
		if strings.Contains(p, "pneumoniamnist") {
			t.Fatalf("held-out modality image %s in the pool", p)
		}
	}
	if _, err := SSLImages([]string{"nope"}, nil); !errors.Is(err, data.ErrBadCollection) {
		t.Errorf("missing collection: err = %v", err)
	}
}

func TestProbeCollections(t *testing.T) {
	b := testBundle(t, sslArch(), 4)
	v := openVLM(t, b.Dir)
	tasks := DefaultProbeTasks(sharedData)
	pick := []ProbeTask{tasks[3], tasks[5]} // mednist-ct (classes), bccd (binned attribute)
	rows, err := ProbeCollections(context.Background(), v, pick, ProbeOptions{Limit: 30})
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 2 {
		t.Fatalf("%d rows", len(rows))
	}
	ct, bccd := rows[0], rows[1]
	if ct.Task != "mednist-ct" || ct.Classes != 3 || ct.Train != 30 || ct.Val != 30 {
		t.Errorf("ct row %+v", ct)
	}
	if ct.Encoder.Dim != b.Manifest.Architecture.HiddenSize || ct.Pixels.Dim != 16*16 {
		t.Errorf("feature lengths: encoder %d, pixels %d", ct.Encoder.Dim, ct.Pixels.Dim)
	}
	// CT body regions (abdomen, chest, head) differ grossly: raw pixels
	// separate them.
	if ct.Pixels.Accuracy < 0.8 {
		t.Errorf("ct raw-pixel probe %.2f", ct.Pixels.Accuracy)
	}
	if bccd.Classes != 3 || bccd.Pixels.Dim != 3*16*16 {
		t.Errorf("bccd row %+v", bccd)
	}
	bad := []ProbeTask{{Name: "mr", Dir: filepath.Join(sharedData, "bccd")}}
	if _, err := ProbeCollections(context.Background(), v, bad, ProbeOptions{Limit: 5}); !errors.Is(err, ErrConfig) {
		t.Errorf("attribute collection without an attribute: err = %v", err)
	}
}
