package preprocessing

import (
	"bytes"
	"errors"
	"image"
	"image/color"
	"math/rand/v2"
	"testing"
)

// gradientImage is a w×h gray image with a diagonal ramp and a bright
// square, so crops and rotations change it.
func gradientImage(w, h int) *image.Gray {
	g := image.NewGray(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			v := uint8((x + y) * 255 / (w + h))
			if x > w/4 && x < w/2 && y > h/4 && y < h/2 {
				v = 250
			}
			g.SetGray(x, y, color.Gray{Y: v})
		}
	}
	return g
}

func pixOf(t *testing.T, img image.Image) []byte {
	t.Helper()
	switch im := img.(type) {
	case *image.Gray:
		return im.Pix
	case *image.RGBA:
		return im.Pix
	}
	t.Fatalf("unexpected view type %T", img)
	return nil
}

func TestAugmentDeterministicPerSeed(t *testing.T) {
	src, err := NewSource(gradientImage(90, 70), 0)
	if err != nil {
		t.Fatal(err)
	}
	cfg := DefaultAugment(28)
	view := func(seed uint64) []byte {
		v, err := Augment(src, cfg, rand.New(rand.NewPCG(seed, 7)))
		if err != nil {
			t.Fatal(err)
		}
		return pixOf(t, v)
	}
	a, b, c := view(1), view(1), view(2)
	if !bytes.Equal(a, b) {
		t.Error("same seed gave different views")
	}
	if bytes.Equal(a, c) {
		t.Error("different seeds gave the same view")
	}
}

func TestAugmentShapesAndColour(t *testing.T) {
	rgb := image.NewRGBA(image.Rect(0, 0, 40, 30))
	for i := range rgb.Pix {
		rgb.Pix[i] = uint8(i * 7)
		if i%4 == 3 {
			rgb.Pix[i] = 255
		}
	}
	tests := []struct {
		name string
		img  image.Image
		gray bool
	}{
		{"gray", gradientImage(64, 64), true},
		{"rgb", rgb, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			src, err := NewSource(tc.img, 32)
			if err != nil {
				t.Fatal(err)
			}
			if w, h := src.Bounds(); max(w, h) > 32 {
				t.Errorf("source %d×%d, want its long edge ≤ 32", w, h)
			}
			v, err := Augment(src, AugmentConfig{Size: 20}, rand.New(rand.NewPCG(3, 3)))
			if err != nil {
				t.Fatal(err)
			}
			if b := v.Bounds(); b.Dx() != 20 || b.Dy() != 20 {
				t.Errorf("view %v, want 20×20", b)
			}
			if _, isGray := v.(*image.Gray); isGray != tc.gray {
				t.Errorf("view is %T; gray source: %v", v, tc.gray)
			}
			px, err := DefaultConfig().Process(v)
			if err != nil {
				t.Fatalf("view does not process: %v", err)
			}
			if px.NumPatches == 0 {
				t.Error("no patches")
			}
		})
	}
}

// TestSourceViewIsPlain: View with no augmentation of a uniform image is
// the same uniform image, and a ramp keeps its direction.
func TestSourceViewIsPlain(t *testing.T) {
	src, err := NewSource(gradientImage(50, 50), 0)
	if err != nil {
		t.Fatal(err)
	}
	v := src.View(25).(*image.Gray)
	if v.GrayAt(0, 0).Y >= v.GrayAt(24, 24).Y {
		t.Errorf("ramp lost: corner values %d, %d", v.GrayAt(0, 0).Y, v.GrayAt(24, 24).Y)
	}
}

func TestAugmentBadInput(t *testing.T) {
	src, err := NewSource(gradientImage(10, 10), 0)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 1))
	tests := []struct {
		name string
		src  *Source
		cfg  AugmentConfig
		want error
	}{
		{"tiny size", src, AugmentConfig{Size: 4}, ErrConfig},
		{"scale above 1", src, AugmentConfig{MinScale: 1.5}, ErrConfig},
		{"rotation", src, AugmentConfig{MaxRotate: 200}, ErrConfig},
		{"blur probability", src, AugmentConfig{BlurProb: 2}, ErrConfig},
		{"no source", nil, AugmentConfig{}, ErrConfig},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := Augment(tc.src, tc.cfg, rng); !errors.Is(err, tc.want) {
				t.Errorf("err = %v, want %v", err, tc.want)
			}
		})
	}
	if _, err := NewSource(nil, 0); !errors.Is(err, ErrEmpty) {
		t.Errorf("nil image: err = %v, want ErrEmpty", err)
	}
	if _, err := NewSource(image.NewGray(image.Rect(0, 0, 0, 5)), 0); !errors.Is(err, ErrEmpty) {
		t.Errorf("empty image: err = %v, want ErrEmpty", err)
	}
}

// TestAugmentOffSwitches: with every random change off and a full crop,
// the view equals the plain View.
func TestAugmentOffSwitches(t *testing.T) {
	src, err := NewSource(gradientImage(30, 30), 0)
	if err != nil {
		t.Fatal(err)
	}
	off := AugmentConfig{Size: 30, MinScale: 1, MaxRotate: -1, Brightness: -1, Contrast: -1, Gamma: -1, NoiseStd: -1, BlurProb: -1}
	v, err := Augment(src, off, rand.New(rand.NewPCG(5, 5)))
	if err != nil {
		t.Fatal(err)
	}
	// A full-area crop may still differ in aspect ratio; only the centre
	// row is guaranteed to match closely. Compare the centre pixel.
	plain := src.View(30).(*image.Gray)
	got := v.(*image.Gray)
	d := int(got.GrayAt(15, 15).Y) - int(plain.GrayAt(15, 15).Y)
	if d < -3 || d > 3 {
		t.Errorf("centre pixel %d, plain view %d", got.GrayAt(15, 15).Y, plain.GrayAt(15, 15).Y)
	}
}
