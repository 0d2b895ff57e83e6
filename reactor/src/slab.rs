//! A table of slots named by index and generation, so that a stale name (a
//! timer already fired, a channel already closed) never reaches whoever
//! holds the slot now. Shared by the timer wheel and the loop's channel
//! table. A leaf: plain data.

/// The slots. A slot is vacant, reserved (named but not yet holding a
/// value: a channel needs its token before it exists), or full.
pub(crate) struct Slab<T> {
    slots: Vec<Slot<T>>,
    free: Vec<u32>,
    /// Generations wrap at this mask (a channel token packs them in 28
    /// bits).
    mask: u32,
    full: usize,
}

struct Slot<T> {
    generation: u32,
    value: Option<T>,
}

impl<T> Slab<T> {
    /// An empty table whose generations wrap at `mask`.
    pub(crate) fn new(mask: u32) -> Self {
        Slab {
            slots: Vec::new(),
            free: Vec::new(),
            mask,
            full: 0,
        }
    }

    /// A vacant slot, reserved: its index and generation.
    pub(crate) fn reserve(&mut self) -> (u32, u32) {
        let index = match self.free.pop() {
            Some(i) => i,
            None => {
                self.slots.push(Slot {
                    generation: 0,
                    value: None,
                });
                (self.slots.len() - 1) as u32
            }
        };
        (index, self.slots[index as usize].generation)
    }

    /// Puts `value` in reserved slot `index`.
    pub(crate) fn fill(&mut self, index: u32, value: T) {
        let slot = &mut self.slots[index as usize];
        debug_assert!(slot.value.is_none(), "filling a full slot");
        slot.value = Some(value);
        self.full += 1;
    }

    /// Reserves a slot and fills it: its index and generation.
    pub(crate) fn insert(&mut self, value: T) -> (u32, u32) {
        let (index, generation) = self.reserve();
        self.fill(index, value);
        (index, generation)
    }

    /// The value in slot `index` if it is still at `generation`.
    pub(crate) fn get_mut(&mut self, index: usize, generation: u32) -> Option<&mut T> {
        let slot = self.slots.get_mut(index)?;
        if slot.generation != generation {
            return None;
        }
        slot.value.as_mut()
    }

    /// The value in slot `index`, whatever its generation.
    pub(crate) fn at_mut(&mut self, index: usize) -> Option<&mut T> {
        self.slots.get_mut(index)?.value.as_mut()
    }

    /// Empties slot `index` (full or only reserved) and gives it back with
    /// a new generation, so every name of it goes stale; returns what it
    /// held.
    pub(crate) fn remove(&mut self, index: usize) -> Option<T> {
        let slot = &mut self.slots[index];
        let value = slot.value.take();
        if value.is_some() {
            self.full -= 1;
        }
        slot.generation = slot.generation.wrapping_add(1) & self.mask;
        self.free.push(index as u32);
        value
    }

    /// Slot `index`'s name, if it holds a value.
    pub(crate) fn full_name(&self, index: usize) -> Option<(u32, u32)> {
        let slot = self.slots.get(index)?;
        slot.value.as_ref().map(|_| (index as u32, slot.generation))
    }

    /// How many slots there are, vacant or not (for walking them by index).
    pub(crate) fn slot_count(&self) -> usize {
        self.slots.len()
    }

    /// Every value held.
    pub(crate) fn values(&self) -> impl Iterator<Item = &T> + '_ {
        self.slots.iter().filter_map(|s| s.value.as_ref())
    }

    /// How many slots hold a value.
    pub(crate) fn len(&self) -> usize {
        self.full
    }

    /// Takes every value out, leaving the table empty (an io_uring loop
    /// that must leak what the kernel may still use).
    #[cfg_attr(not(feature = "io-uring"), allow(dead_code))]
    pub(crate) fn drain(&mut self) -> impl Iterator<Item = T> + '_ {
        self.full = 0;
        self.free.clear();
        self.slots.drain(..).filter_map(|s| s.value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stale_names_miss_and_slots_are_reused() {
        let mut slab = Slab::new(0b11);
        let (i, g) = slab.insert("a");
        assert_eq!(slab.get_mut(i as usize, g), Some(&mut "a"));
        assert_eq!(slab.remove(i as usize), Some("a"));
        assert_eq!(slab.get_mut(i as usize, g), None, "stale");
        let (j, h) = slab.reserve();
        assert_eq!((j, h), (i, (g + 1) & 0b11), "reused, next generation");
        assert_eq!(slab.len(), 0, "reserved is not full");
        slab.fill(j, "b");
        assert_eq!(slab.full_name(j as usize), Some((j, h)));
        let mut generation = h;
        for _ in 0..3 {
            slab.remove(j as usize);
            generation = slab.reserve().1;
        }
        assert_eq!(generation, 0, "generations wrap at the mask");
        assert_eq!(slab.full_name(j as usize), None, "reserved, not full");
        assert_eq!(slab.drain().count(), 0);
    }
}
