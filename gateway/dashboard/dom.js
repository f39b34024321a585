/** A small element builder: `h('div', { class: 'x', onclick }, 'text', child)`. Text is never HTML. */

export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag)
  for (const [name, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue
    if (name.startsWith('on') && typeof value === 'function') {
      el.addEventListener(name.slice(2), value)
    } else if (value === true) {
      el.setAttribute(name, '')
    } else {
      el.setAttribute(name, String(value))
    }
  }
  append(el, children)
  return el
}

function append(el, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue
    if (Array.isArray(child)) append(el, child)
    else el.append(child instanceof Node ? child : document.createTextNode(String(child)))
  }
}

/** Replace what `el` shows with `children`. */
export function show(el, ...children) {
  el.replaceChildren()
  append(el, children)
}

export function byId(id) {
  const el = document.getElementById(id)
  if (!el) throw new Error(`missing #${id}`)
  return el
}

/** Attributes that make a line open something on click, Enter or Space (and reachable by Tab). */
export function opens(action) {
  return {
    tabindex: 0,
    role: 'button',
    onclick: action,
    onkeydown: (e) => {
      if (e.key !== 'Enter' && e.key !== ' ') return
      e.preventDefault()
      action()
    },
  }
}
