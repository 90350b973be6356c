-- luacheck: globals love
function love.conf(t)
  t.window.title = "maintenance report"
  t.window.width, t.window.height = 900, 600
  t.window.vsync = 1
  -- No sound: the example needs none, and headless machines often have no device.
  t.modules.audio, t.modules.sound = false, false
  t.modules.joystick, t.modules.physics = false, false
end
